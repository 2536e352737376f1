"""imgdag.codec: pixels against Pillow and OpenCV, EXIF orientation, modes, DCT downscale, errors."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import realdata_path
from imgdag import codec
from imgdag.errors import DataError


def encoded(pixels, fmt="JPEG", mode=None, **save):
    image = Image.fromarray(pixels)
    out = io.BytesIO()
    (image.convert(mode) if mode else image).save(out, fmt, **save)
    return out.getvalue()


def photo(height=120, width=160, seed=0):
    """A smooth colour image (JPEG-friendly): random colours 20 px apart, linearly blended."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 20 + 1, width // 20 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def real_jpegs(count=20):
    root = realdata_path("imagenet-sample")
    return sorted(root.glob("*.JPEG"))[:count]


def test_real_jpegs_decode_as_pillow_and_resize_as_opencv():
    for path in real_jpegs():
        data = path.read_bytes()
        pixels = codec.decode_rgb(data, path)
        with Image.open(path) as image:
            assert np.array_equal(pixels, np.asarray(image.convert("RGB")))
            gray = np.asarray(image.convert("L")).astype(int)
        assert np.abs(codec.decode_gray(data, path)[:, :, 0].astype(int) - gray).mean() < 0.5  # luma vs RGB->L
        height, width = pixels.shape[:2]
        size = (256, width * 256 // height) if height <= width else (height * 256 // width, 256)
        expected = cv2.resize(pixels, size[::-1], interpolation=cv2.INTER_LINEAR)
        assert np.array_equal(codec.resize_shorter(pixels, 256), expected)


def test_dct_downscale_decodes_at_a_halving_and_stays_close():
    big = photo(1040, 1300)
    data = encoded(big, quality=95)
    assert codec.decode_rgb(data, "b", min_side=256).shape == (260, 325, 3)  # 1/4, shorter >= 256
    assert codec.decode_rgb(data, "b", min_side=300).shape == (520, 650, 3)  # 1/2
    assert codec.decode_rgb(data, "b", min_side=600).shape == (1040, 1300, 3)
    fast = codec.resize(codec.decode_rgb(data, "b", min_side=256), 256, 320)  # 1/4 scale, then bilinear
    assert fast.shape == codec.resize_shorter(codec.decode_rgb(data, "b"), 256).shape == (256, 320, 3)
    # a DCT downscale averages like an area resize (not like the aliasing full-size bilinear)
    area = cv2.resize(codec.decode_rgb(data, "b"), (320, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(fast.astype(int) - area).mean() < 2


def test_fast_dct_stays_within_two_levels_of_the_exact_decode():
    # the training loader's decode: libjpeg-turbo's fast IDCT and upsampling, im2rec's tolerance
    for path in real_jpegs():
        data = path.read_bytes()
        exact, fast = codec.decode_rgb(data, path), codec.decode_rgb(data, path, fast=True)
        diff = np.abs(fast.astype(int) - exact)
        assert fast.shape == exact.shape and 0 < diff.mean() <= 2  # it is the other decoder
        box = lambda w, h: (w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2)  # noqa: E731
        crop = codec.decode_resized_crop(data, path, box, 64, fast=True).astype(int)
        assert np.abs(crop - codec.decode_resized_crop(data, path, box, 64)).mean() <= 2


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_pillow_exif_transpose(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encoded(photo(40, 64), quality=95, exif=exif)
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    got = codec.decode_rgb(data, "e.jpg")
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert codec.jpeg_size(data) == expected.shape[1::-1]
    assert codec.decode_stored(data, "e.jpg").shape == (40, 64, 3)  # as stored: not rotated
    png = encoded(expected[:, :, ::-1].copy(), "PNG", exif=exif)  # Pillow's path applies it too
    assert codec.decode_rgb(png, "e.png").shape[:2] == np.asarray(ImageOps.exif_transpose(
        Image.open(io.BytesIO(png)))).shape[:2]
    crop = codec.decode_resized_crop(data, "e.jpg", lambda w, h: (0, 0, w, h), 16)
    area = cv2.resize(expected, (16, 16), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - area).mean() < 2


def test_grayscale_cmyk_palette_and_16_bit_png():
    pixels = photo(32, 48)
    gray = np.asarray(Image.fromarray(pixels).convert("L"))
    for data in (encoded(pixels, mode="L", quality=95), encoded(pixels, "PNG", mode="L")):
        rgb = codec.decode_rgb(data, "g")
        assert rgb.shape == (32, 48, 3) and (rgb[..., 0] == rgb[..., 2]).all()
        assert codec.decode_stored(data, "g").shape == (32, 48, 1)
        assert np.abs(codec.decode_gray(data, "g")[:, :, 0].astype(int) - gray).mean() < 2
    cmyk = encoded(pixels, mode="CMYK", quality=95)
    with Image.open(io.BytesIO(cmyk)) as image:
        assert image.mode == "CMYK"
        expected = np.asarray(image.convert("RGB"))
    assert np.array_equal(codec.decode_rgb(cmyk, "c"), expected)
    palette = encoded(pixels, "PNG", mode="P")
    with Image.open(io.BytesIO(palette)) as image:
        assert np.array_equal(codec.decode_rgb(palette, "p"), np.asarray(image.convert("RGB")))
    deep = Image.fromarray(gray.astype(np.uint16) * 257)  # 16-bit grey PNG: high byte = gray
    out = io.BytesIO()
    deep.save(out, "PNG")
    assert np.array_equal(codec.decode_gray(out.getvalue(), "d")[:, :, 0], gray)
    rgba = np.dstack([pixels, np.full((32, 48), 7, np.uint8)])
    assert np.array_equal(codec.decode_stored(encoded(rgba, "PNG"), "a"), rgba)


def test_encode_round_trips():
    pixels = photo()
    for quality, tolerance in ((95, 2.0), (50, 6.0)):
        data = codec.encode_jpeg(pixels, quality)
        assert np.abs(codec.decode_rgb(data, "q").astype(int) - pixels).mean() < tolerance
    assert len(codec.encode_jpeg(pixels, 50)) < len(codec.encode_jpeg(pixels, 95))
    gray = pixels[:, :, :1]
    assert codec.decode_stored(codec.encode_jpeg(gray, 95), "g").shape == (120, 160, 1)
    for image in (pixels, gray, np.dstack([pixels, pixels[:, :, :1]])):
        assert np.array_equal(codec.decode_stored(codec.encode_png(image, 9), "p"), image)


def test_crops():
    pixels = np.zeros((60, 120, 3), np.uint8)
    pixels[20:40, 50:70] = (255, 0, 0)
    crop = codec.resize_center_crop(pixels, 40, 20)
    assert crop.shape == (20, 20, 3) and tuple(crop[10, 10]) == (255, 0, 0)
    assert codec.center_square(pixels).shape == (60, 60, 3) and codec.center_square(pixels)[30, 30, 0] == 255
    with pytest.raises(ValueError, match="larger than the image"):
        codec.center_crop(pixels, 61, 10)
    box = codec.decode_resized_crop(encoded(pixels, "PNG"), "b", lambda w, h: (50, 20, 70, 40), 8)
    assert box.shape == (8, 8, 3) and (box[..., 0] == 255).all()


def test_random_resized_crop_of_real_jpegs_is_nearer_an_area_resize_than_plain_bilinear():
    """The DCT-domain downscale averages, as an area resize does; a bilinear resize of the
    full decode aliases (how much depends on the image, so the test compares on average)."""
    fast_error, bilinear_error = [], []
    for path in real_jpegs(10):
        data = path.read_bytes()
        full = codec.decode_rgb(data, path)
        height, width = full.shape[:2]

        def box(w, h):
            assert (w, h) == (width, height)
            return w // 8, h // 8, w - w // 8, h - h // 4  # at least 96 px: decoded at <= 1/2 for 48 px

        fast = codec.decode_resized_crop(data, path, box, 48)
        left, top, right, bottom = box(width, height)
        window = full[top:bottom, left:right]
        area = cv2.resize(window, (48, 48), interpolation=cv2.INTER_AREA).astype(int)
        assert fast.shape == (48, 48, 3)
        fast_error.append(np.abs(fast - area).mean())
        bilinear_error.append(np.abs(codec.resize(window, 48, 48) - area).mean())
    assert np.mean(fast_error) < 0.8 * np.mean(bilinear_error) and max(fast_error) < 10


@pytest.mark.parametrize("kind", ["truncated", "zero bytes", "garbage", "bomb", "truncated png", "mode"])
def test_every_decode_failure_names_the_source(kind, monkeypatch):
    jpeg = encoded(photo(), quality=95)
    png = encoded(photo(), "PNG")
    decoders = (codec.decode_rgb, codec.decode_gray, codec.decode_stored)
    if kind == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    if kind == "mode":  # Pillow reads a LAB TIFF but has no LAB -> grey conversion
        data, decoders = encoded(np.zeros((4, 4, 3), np.uint8), "TIFF", mode="LAB"), (codec.decode_gray,)
    else:
        data = {"truncated": jpeg[: len(jpeg) // 2], "zero bytes": b"", "garbage": b"\xff\xd8 not a jpeg" * 9,
                "bomb": jpeg, "truncated png": png[: len(png) // 2]}[kind]
    if kind != "mode":
        decoders += (codec.check_image,)
    for decode in decoders:
        with pytest.raises(DataError, match=r"^data/x\.rec record 7: not a decodable image"):
            decode(data, "data/x.rec record 7")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -2])
def test_check_image_catches_a_jpeg_cut_anywhere(keep):
    """The cheap check decodes every byte: a JPEG cut early, late, or just before its end marker."""
    jpeg = encoded(photo(480, 640), quality=95)
    cut = jpeg[:keep] if keep < 0 else jpeg[: int(len(jpeg) * keep)]
    codec.check_image(jpeg, "whole.jpg")
    with pytest.raises(DataError, match=r"^cut\.jpg: not a decodable image"):
        codec.check_image(cut, "cut.jpg")


def test_check_image_passes_what_decodes_and_says_what_failed():
    for data in (encoded(photo()), encoded(photo(), "PNG"), encoded(photo(), "JPEG", mode="CMYK"),
                 *(p.read_bytes() for p in real_jpegs(5))):
        codec.check_image(data, "ok")
    with pytest.raises(DataError, match=r"^e: not a decodable image: the file is empty \(0 bytes\)$"):
        codec.check_image(b"", "e")
    with pytest.raises(DataError, match=r"^g: not a decodable image: not an image format Pillow reads "
                                        r"\(it starts b'GIF8x no'\)$"):
        codec.check_image(b"GIF8x not an image", "g")


def test_read_rgb_file_names_a_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jpg: cannot read the image file"):
        codec.read_rgb_file(tmp_path / "nope.jpg")
