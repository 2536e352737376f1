"""Learnable synthetic class images: each class is one shape in one colour.

Class k is SHAPES[k % 8] filled with PALETTE[(3 * (k % 8) + k // 8) % 10]: distinct pairs
for the first 80 classes, distinct colours for the first 8. The shape is drawn at a random
position and scale over a noisy, low-saturation background, with colour jitter and pixel
noise, so a small CNN separates the classes within a few CPU epochs while no two images
are alike. Grayscale copies keep the shape.
"""
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("disc", "square", "triangle", "ring", "cross", "stripes", "diamond", "frame")
PALETTE = ((220, 40, 40), (240, 240, 240), (200, 50, 200), (230, 210, 40), (120, 60, 180),
           (40, 200, 210), (40, 80, 220), (130, 80, 40), (240, 140, 30), (40, 180, 60))


def class_style(class_index: int) -> tuple[str, tuple[int, int, int]]:
    """(shape, RGB colour) of a class."""
    shape, round_ = class_index % len(SHAPES), class_index // len(SHAPES)
    return SHAPES[shape], PALETTE[(3 * shape + round_) % len(PALETTE)]


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    base = rng.uniform(70, 170) + rng.uniform(-25, 25, size=3)
    coarse = rng.normal(0, 18, size=(height // 8 + 2, width // 8 + 2, 3))
    texture = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    pixels = np.clip(base + texture, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(2))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box, colour, rng) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    line = max(2, int(min(w, h) * 0.16))
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x0 + w / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=line)
    elif shape == "cross":
        draw.rectangle((x0 + w / 2 - line, y0, x0 + w / 2 + line, y1), fill=colour)
        draw.rectangle((x0, y0 + h / 2 - line, x1, y0 + h / 2 + line), fill=colour)
    elif shape == "stripes":
        bands = 3 + int(rng.integers(0, 2))
        step = h / (2 * bands - 1)
        for i in range(bands):
            draw.rectangle((x0, y0 + 2 * i * step, x1, y0 + (2 * i + 1) * step), fill=colour)
    elif shape == "diamond":
        draw.polygon([(x0 + w / 2, y0), (x1, y0 + h / 2), (x0 + w / 2, y1), (x0, y0 + h / 2)], fill=colour)
    elif shape == "frame":
        draw.rectangle(box, outline=colour, width=line)


def draw_class_image(class_index: int, rng: np.random.Generator, width: int, height: int,
                     gray: bool = False) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One image of the class and the shape's box (x0, y0, x1, y1), inclusive pixel corners."""
    shape, colour = class_style(class_index)
    image = _background(rng, width, height)
    side = min(width, height)
    w = int(side * rng.uniform(0.4, 0.75))
    h = int(w * rng.uniform(0.85, 1.15)) if shape not in ("disc", "ring") else w
    h = min(h, height - 2)
    x0 = int(rng.integers(0, width - w))
    y0 = int(rng.integers(0, height - h))
    jitter = np.clip(np.array(colour) + rng.integers(-25, 26, size=3), 0, 255)
    _draw_shape(ImageDraw.Draw(image), shape, (x0, y0, x0 + w, y0 + h), tuple(int(c) for c in jitter), rng)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, size=(height, width, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if gray:
        image = image.convert("L")
    return image, (x0, y0, min(x0 + w, width - 1), min(y0 + h, height - 1))


def jpeg_bytes(image: Image.Image, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(80, 96)))
    return buffer.getvalue()
