"""The one image codec: decode (EXIF orientation applied), resize, crop, encode; no torch.

Arrays are uint8 (H, W, C) in RGB(A) order: C is 3 for `decode_rgb`, 1 for `decode_gray`,
1, 3 or 4 for `decode_stored`. JPEGs whose colour space libjpeg-turbo converts (YCbCr, grey)
are decoded by simplejpeg, whose DCT-domain downscale (`min_side`: decode at 1/2, 1/4 or 1/8
scale while the shorter side stays >= min_side) skips most of the work for a small target;
everything else (PNG, GIF, BMP, CMYK JPEGs, palette, 16-bit) goes through Pillow, with
`Image.draft` for the downscale of the JPEGs it decodes. Resizing is OpenCV's INTER_LINEAR
(what im2rec does: bilinear at half-pixel centres, no antialiasing); encoding JPEG is
simplejpeg (libjpeg-turbo), PNG is OpenCV (zlib). The choice is measured in
benchmarks/bench_codec.py.

Every failure to decode raises DataError naming `source` (a file path, or
"<rec path> record <key>"). The EXIF orientation of a JPEG is read from its APP1 segment
without decoding, and applied to the decoded array by flips and transposes.
"""
import io
import math
import struct

import cv2
import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from imgdag.errors import DataError

cv2.setNumThreads(1)  # the caller's processes are the parallelism: one codec thread each

_JPEG_SOI = b"\xff\xd8"
_TURBO_SPACES = ("YCbCr", "Gray")  # decode_jpeg_header's colour spaces simplejpeg converts to RGB
_ORIENTATION_TAG = 0x0112


def read_bytes(path) -> bytes:
    """The bytes of an image file; DataError naming it when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(path, f"cannot read the image file: {e.strerror or e}") from None


def decode_rgb(data: bytes, source, min_side: int = 0, fast: bool = False) -> np.ndarray:
    """(H, W, 3) RGB of an image (grey, palette, CMYK and alpha converted), EXIF-oriented.
    min_side > 0 lets a JPEG decode at a DCT-domain scale (1/2, 1/4, 1/8) whose shorter side
    is >= min_side. fast: libjpeg-turbo's fast integer IDCT and chroma upsampling (training-time
    crops only: pixels move by about a level, see benchmarks/bench_codec.py)."""
    return _decode(data, source, "RGB", min_side, fast)


def decode_gray(data: bytes, source, min_side: int = 0) -> np.ndarray:
    """(H, W, 1) luma of an image (a colour JPEG's Y channel, as OpenCV's grayscale read)."""
    return _decode(data, source, "L", min_side)


def decode_stored(data: bytes, source) -> np.ndarray:
    """(H, W, C) with the channels stored: 1 grey, 3 colour, 4 with alpha; EXIF ignored
    (OpenCV's IMREAD_UNCHANGED)."""
    return _decode(data, source, None, 0)


def check_image(data: bytes, source) -> None:
    """DataError naming `source` unless the image decodes: the cheapest complete check. Every
    byte is decoded (a truncated or corrupt JPEG, PNG or GIF fails as in a full decode) but a
    JPEG only at 1/8 scale with the fast IDCT, which skips most of the inverse DCT and colour
    conversion."""
    _decode(data, source, "RGB", 1, fast=True)


def read_rgb_file(path, min_side: int = 0) -> np.ndarray:
    """decode_rgb of an image file."""
    return decode_rgb(read_bytes(path), path, min_side)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as displayed (EXIF orientation applied) of a JPEG simplejpeg decodes,
    else None; reads the headers only."""
    header = _turbo_header(data)
    if header is None:
        return None
    height, width, _ = header
    return (height, width) if _orientation(data) in (5, 6, 7, 8) else (width, height)


def _turbo_header(data):
    """(height, width, colour space) of a JPEG that simplejpeg decodes, else None (Pillow's)."""
    if not data.startswith(_JPEG_SOI):
        return None
    try:
        height, width, space, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None  # let Pillow say what is wrong
    return (height, width, space) if space in _TURBO_SPACES else None


def _decode(data, source, mode, min_side, fast=False):
    if not data:
        raise DataError(source, "not a decodable image: the file is empty (0 bytes)")
    header = _turbo_header(data)
    if header is not None:
        _check_pixels(header[0] * header[1], source)
        pixels = _decode_turbo(data, source, mode, header, min_side, fast)
        return pixels if mode is None else _orient(pixels, _orientation(data))
    return _decode_pillow(data, source, mode, min_side)


def _check_pixels(count, source):
    """Pillow's decompression-bomb limit for every decoder."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and count > 2 * limit:
        raise DataError(source, f"not a decodable image: {count} pixels is over the limit of {2 * limit}")


def _scaled_min(height, width, min_side):
    """simplejpeg's min_height/min_width for the smallest of the scales 1/2, 1/4, 1/8 whose
    shorter side stays >= min_side ((0, 0): full size). Only these, the exact DCT halvings:
    libjpeg-turbo's other M/8 scales are slower and farther from a bilinear resize."""
    shorter, factor = min(height, width), 1
    while factor < 8 and min_side > 0 and shorter >= 2 * factor * min_side:
        factor *= 2
    if factor == 1:
        return 0, 0
    return math.ceil(height / factor), math.ceil(width / factor)


def _decode_turbo(data, source, mode, header, min_side, fast):
    height, width, space = header
    min_height, min_width = _scaled_min(height, width, min_side)
    gray = mode == "L" or (mode is None and space == "Gray")
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB",
                                        min_height=min_height, min_width=min_width,
                                        fastdct=fast, fastupsample=fast)
    except ValueError as e:
        raise DataError(source, f"not a decodable image: {e}") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _decode_pillow(data, source, mode, min_side):
    orientation = 1
    try:
        with Image.open(io.BytesIO(data)) as image:
            if mode is None:
                mode = _stored_mode(image)
            else:
                orientation = image.getexif().get(_ORIENTATION_TAG, 1)
                if min_side and image.format == "JPEG":
                    height, width = _scaled_min(image.height, image.width, min_side)
                    image.draft(mode, (width, height) if width else image.size)
            if image.mode in ("I;16", "I;16B", "I"):  # 16-bit grey: keep the high byte, as OpenCV
                image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8))
            pixels = np.asarray(image if image.mode == mode else image.convert(mode))
    except UnidentifiedImageError:
        raise DataError(source, f"not a decodable image: not an image format Pillow reads "
                                f"(it starts {data[:8]!r})") from None
    except (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(source, f"not a decodable image: {e}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return _orient(pixels, orientation)


def _stored_mode(image: Image.Image) -> str:
    """The Pillow mode (L, RGB or RGBA) that keeps an image's channels: grey, colour, alpha."""
    if image.mode in ("L", "RGB", "RGBA"):
        return image.mode
    if image.mode in ("LA", "PA") or "transparency" in image.info:
        return "RGBA"
    if image.mode in ("1", "I", "I;16", "F"):
        return "L"
    return "RGB"


def _orientation(data: bytes) -> int:
    """The EXIF Orientation (1-8) of a JPEG's APP1 segment; 1 when absent or unreadable."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], struct.unpack_from(">H", data, at + 2)[0]
        if marker == 0xDA:  # start of scan: no more metadata
            break
        segment = data[at + 4 : at + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            return _tiff_orientation(segment[6:])
        at += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        ifd = struct.unpack_from(order + "I", tiff, 4)[0]
        for i in range(struct.unpack_from(order + "H", tiff, ifd)[0]):
            tag, _, _, value = struct.unpack_from(order + "HHIH", tiff, ifd + 2 + 12 * i)
            if tag == _ORIENTATION_TAG:
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation as Pillow's ImageOps.exif_transpose (a view when possible)."""
    if orientation in (5, 6, 7, 8):
        pixels = pixels.transpose(1, 0, 2)  # 5: transpose; the others flip it
        return {5: pixels, 6: pixels[:, ::-1], 7: pixels[::-1, ::-1], 8: pixels[::-1]}[orientation]
    return {2: pixels[:, ::-1], 3: pixels[::-1, ::-1], 4: pixels[::-1]}.get(orientation, pixels)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the shorter side `size`, the other by integer division (im2rec)."""
    if height > width:
        return height * size // width, size
    return size, width * size // height


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (H, W, C) uint8 to (height, width, C), OpenCV's INTER_LINEAR."""
    if pixels.shape[:2] == (height, width):
        return pixels
    out = cv2.resize(np.ascontiguousarray(pixels), (width, height), interpolation=cv2.INTER_LINEAR)
    return out[:, :, None] if out.ndim == 2 else out


def resize_shorter(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size` (im2rec's --resize)."""
    return resize(pixels, *shorter_side_size(*pixels.shape[:2], size))


def center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central (height, width) window (a view); offsets rounded down."""
    top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"crop {height}x{width} is larger than the image {pixels.shape[0]}x{pixels.shape[1]}")
    return pixels[top : top + height, left : left + width]


def center_square(pixels: np.ndarray) -> np.ndarray:
    """The central square of side min(H, W) (im2rec's --center-crop)."""
    side = min(pixels.shape[:2])
    return center_crop(pixels, side, side)


def resize_center_crop(pixels: np.ndarray, resize_to: int, crop: int) -> np.ndarray:
    """Shorter side to `resize_to`, then the central crop x crop (evaluation preprocessing)."""
    return center_crop(resize_shorter(pixels, resize_to), crop, crop)


def decode_resized_crop(data: bytes, source, box_of, size: int, fast: bool = False) -> np.ndarray:
    """(size, size, 3) RGB of the box `box_of(width, height)` -> (left, top, right, bottom)
    (in displayed pixels) resized to size x size; the JPEG is decoded at the smallest DCT
    scale that keeps the box at least `size` pixels on each side (`fast` as in decode_rgb)."""
    displayed = jpeg_size(data)
    if displayed is None:
        pixels = decode_rgb(data, source)
        left, top, right, bottom = box_of(pixels.shape[1], pixels.shape[0])
        return resize(pixels[top:bottom, left:right], size, size)
    width, height = displayed
    left, top, right, bottom = box_of(width, height)
    shrink = min(right - left, bottom - top) / size  # how much larger than the target the box is
    pixels = decode_rgb(data, source, math.ceil(min(width, height) / shrink) if shrink >= 2 else 0, fast)
    sy, sx = pixels.shape[0] / height, pixels.shape[1] / width
    top, bottom = round(top * sy), max(round(top * sy) + 1, round(bottom * sy))
    left, right = round(left * sx), max(round(left * sx) + 1, round(right * sx))
    return resize(pixels[top:bottom, left:right], size, size)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of (H, W, 3) RGB or (H, W, 1) grey uint8 at `quality` (1-100), 4:2:0 as OpenCV."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.shape[2] == 1:
        return simplejpeg.encode_jpeg(pixels, quality, colorspace="GRAY", colorsubsampling="Gray")
    return simplejpeg.encode_jpeg(pixels[:, :, :3], quality, colorspace="RGB", colorsubsampling="420")


def encode_png(pixels: np.ndarray, level: int) -> bytes:
    """PNG bytes of (H, W, C) uint8 (C 1, 3 or 4, RGB(A) order) at zlib level 0-9 (clipped)."""
    channels = pixels.shape[2]
    bgr = pixels if channels == 1 else pixels[:, :, [2, 1, 0, 3][:channels]]
    ok, out = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, min(max(level, 0), 9)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} PNG")
    return out.tobytes()
