"""Decode an image file as 3-channel RGB (grayscale, palette, CMYK and alpha images too)."""
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from imgdag.errors import DataError


def load_rgb(source, name: str = "") -> Image.Image:
    """Decode bytes or a file path into an RGB image; DataError naming `name` if undecodable."""
    where = name or (str(source) if isinstance(source, (str, Path)) else "<bytes>")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(where, f"not a decodable image: {e}") from e
