"""Images as files: `<split dir>/NNNNNN_<label>.png` plus the MXNet `.lst` that lists them.

The `.lst` paths are relative to the split directory's parent, so `make_rec.py` packs them
with `--image-root` set to that parent (as im2rec does with its root argument).
"""
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from imgdag.atomic import atomic_dir
from imgdag.faults import fault_point
from imgdag.formats.lst import LstEntry, write_lst


def write_labelled_pngs(images: np.ndarray, labels: np.ndarray, split_dir, lst_path) -> int:
    """Write each image as `NNNNNN_<label>.png` into split_dir and list them in lst_path."""
    split_dir = Path(split_dir)
    entries = []
    with atomic_dir(split_dir) as tmp:
        for i, (image, label) in enumerate(tqdm(zip(images, labels), total=len(labels),
                                                desc=f"png {split_dir.name}", mininterval=1)):
            name = f"{i:06d}_{int(label)}.png"
            Image.fromarray(image).save(tmp / name, optimize=False, compress_level=6)
            fault_point("png")
            entries.append(LstEntry(i, (float(label),), f"{split_dir.name}/{name}"))
    write_lst(lst_path, entries)
    return len(entries)
