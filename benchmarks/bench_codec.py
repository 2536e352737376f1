"""Which JPEG codec imgdag.codec uses, measured: Pillow, simplejpeg (libjpeg-turbo), OpenCV and
pyvips (libvips, shrink-on-load; when requirements-bench.txt is installed, as `make bench` does) on
the real ImageNet sample JPEGs (or those under IMGDAG_BENCH_JPEGS, timing.py), in this process, one
thread each.

Tasks (each a pass over every image; the candidates of a task interleaved per repeat):
- decode: full-size RGB;
- decode_256: RGB with the shorter side resized to 256 (Pillow: draft + bilinear resize;
  simplejpeg: DCT-domain downscale + OpenCV bilinear, dct_decode_256 here; OpenCV:
  imdecode + resize; pyvips: thumbnail_buffer, which shrinks on load);
- crop_224: a random-resized crop (a quarter of the area) to 224 x 224 (full decode then crop and
  resize, or imgdag.codec.decode_resized_crop);
- encode_q95: JPEG quality 95 of the 256-px images.
Fast DCT (libjpeg-turbo's fast integer IDCT and chroma upsampling, imgdag.codec's `fast`): timed
as its own candidate in decode and crop_224, and its pixels compared with the exact decode's
("fast_dct_pixels": mean and max |difference| in levels, over every image).
Writes benchmarks/out/codec.json. `--quick`: 10 images, one repeat (a smoke test, not timed).
"""
import argparse
import io
import os
import time

import cv2
import numpy as np
import simplejpeg
from PIL import Image
from timing import context, interleaved, jpegs_source, real_jpegs, summary, write_result

from imgdag import codec

cv2.setNumThreads(1)
os.environ.setdefault("VIPS_CONCURRENCY", "1")
try:
    import pyvips

    pyvips.cache_set_max(0)  # no reuse of an earlier decode of the same bytes
except ImportError:  # optional, requirements-bench.txt
    pyvips = None


def dct_decode_256(data: bytes):
    """RGB with the shorter side resized to 256 by im2rec's rule: a JPEG decodes at the smallest
    DCT scale not under 256 (imgdag.codec's min_side), then OpenCV's bilinear resize."""
    displayed = codec.jpeg_size(data)
    if displayed is None:
        return codec.resize_shorter(codec.decode_rgb(data, "bench"), 256)
    width, height = displayed
    return codec.resize(codec.decode_rgb(data, "bench", 256), *codec.shorter_side_size(height, width, 256))


def pil_decode(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def pil_decode_256(data):
    with Image.open(io.BytesIO(data)) as image:
        height, width = codec.shorter_side_size(image.height, image.width, 256)
        image.draft("RGB", (width, height))
        return np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR))


def cv_decode(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def quarter_box(width, height):
    """The centred box of a quarter of the area (what a random-resized crop averages)."""
    return width // 4, height // 4, width // 4 + width // 2, height // 4 + height // 2


def full_crop_224(data):
    pixels = simplejpeg.decode_jpeg(data)
    left, top, right, bottom = quarter_box(pixels.shape[1], pixels.shape[0])
    return codec.resize(pixels[top:bottom, left:right], 224, 224)


def vips_decode(data):
    return pyvips.Image.new_from_buffer(data, "", access="sequential").colourspace("srgb").numpy()


def vips_decode_256(data):
    header = pyvips.Image.new_from_buffer(data, "")
    height, width = codec.shorter_side_size(header.height, header.width, 256)
    return pyvips.Image.thumbnail_buffer(data, width, height=height, size="force").colourspace("srgb").numpy()


def pil_encode(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


TASKS = {
    "decode": {
        "pillow": pil_decode,
        "simplejpeg": simplejpeg.decode_jpeg,
        "simplejpeg_fastdct_fastupsample": lambda d: simplejpeg.decode_jpeg(d, fastdct=True, fastupsample=True),
        "opencv": cv_decode,
        "imgdag_codec": lambda d: codec.decode_rgb(d, "bench"),
        "imgdag_codec_fast": lambda d: codec.decode_rgb(d, "bench", fast=True),
    },
    "decode_256": {
        "pillow_draft": pil_decode_256,
        "simplejpeg_full_then_resize": lambda d: codec.resize_shorter(simplejpeg.decode_jpeg(d), 256),
        "opencv": lambda d: codec.resize_shorter(cv_decode(d), 256),
        "imgdag_codec_dct": dct_decode_256,
    },
    "crop_224": {
        "full_decode_then_crop": full_crop_224,
        "imgdag_codec_dct": lambda d: codec.decode_resized_crop(d, "bench", quarter_box, 224),
        "imgdag_codec_dct_fast": lambda d: codec.decode_resized_crop(d, "bench", quarter_box, 224, fast=True),
    },
}
if pyvips:
    TASKS["decode"]["pyvips"] = vips_decode
    TASKS["decode_256"]["pyvips_shrink_on_load"] = vips_decode_256

ENCODERS = {
    "pillow": pil_encode,
    "simplejpeg": lambda p: simplejpeg.encode_jpeg(p, 95, colorsubsampling="420"),
    "opencv": lambda p: cv2.imencode(".jpg", p[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 95])[1],  # RGB -> BGR
    "imgdag_codec": lambda p: codec.encode_jpeg(p, 95),
}
if pyvips:
    ENCODERS["pyvips"] = lambda p: pyvips.Image.new_from_array(p).jpegsave_buffer(Q=95)


def fast_dct_pixels(data) -> dict:
    """Mean and max |fast - exact| (levels) of imgdag.codec's decodes, full size and crop_224."""
    pairs = {"decode": lambda d, fast: codec.decode_rgb(d, "bench", fast=fast),
             "crop_224": lambda d, fast: codec.decode_resized_crop(d, "bench", quarter_box, 224, fast=fast)}
    out = {}
    for task, decode in pairs.items():
        diffs = [np.abs(decode(d, True).astype(np.int16) - decode(d, False)) for d in data]
        out[task] = {"mean_abs_diff": round(float(np.mean([x.mean() for x in diffs])), 3),
                     "max_abs_diff": int(max(x.max() for x in diffs))}
    return out


def timed_pass(function, items):
    def run():
        start = time.perf_counter()
        for item in items:
            function(item)
        return {"seconds": time.perf_counter() - start}
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: 10 images, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/codec.json)")
    args = p.parse_args()
    paths = real_jpegs()[: 10 if args.quick else None]
    repeats = 1 if args.quick else args.repeats
    data = [path.read_bytes() for path in paths]
    resized = [dct_decode_256(d) for d in data]
    result = {**context(), "quick": args.quick, **jpegs_source(paths), "images": len(data), "repeats": repeats,
              "pyvips": pyvips and f"{pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}",
              "mean_jpeg_kb": round(sum(map(len, data)) / len(data) / 1024, 1)}
    for task, candidates in {**TASKS, "encode_q95": ENCODERS}.items():
        items = resized if task == "encode_q95" else data
        runs = interleaved({name: timed_pass(f, items) for name, f in candidates.items()}, repeats)
        result[task] = {name: summary(r, len(items), "img") for name, r in runs.items()}
    result["fast_dct_pixels"] = fast_dct_pixels(data)
    write_result("codec", result, args.out)


if __name__ == "__main__":
    main()
