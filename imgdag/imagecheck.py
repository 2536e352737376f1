"""Which images decode: the check every conversion step runs on the images it writes down for
training or evaluation (CNTK maps, class folders, the ILSVRC val table, .rec packing; a Tiny
ImageNet array cache's own decode is its check, imgdag.arraycache_writer).

One rule for every route, params.yaml's `checks.bad_images`: "skip" leaves an image that does
not decode out, counted in the step's summary and named (with its problem) in a warning;
"error" stops at the first one with a DataError naming it. The test is
`imgdag.codec.check_image`. Images in a folder are checked by `workers` processes; images in
an archive are read in this process (one file handle).
"""
import warnings
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.pool import process_pool

if TYPE_CHECKING:  # a type only: imported where it runs (a .rec pass-through copy needs neither)
    from imgdag.layouts.tree import FileTree

BAD_IMAGES = ("skip", "error")
CHUNK = 16  # images per task sent to a worker


@dataclass(frozen=True)
class ImageCheck:
    """How a conversion step treats images that do not decode (see the module docstring)."""

    bad_images: str = "skip"
    workers: int = 1

    def __post_init__(self):
        if self.bad_images not in BAD_IMAGES:
            raise ValueError(f"bad_images must be one of {BAD_IMAGES}, got {self.bad_images!r}")


_worker: dict = {}  # this process's tree


def _use_tree(tree: "FileTree") -> None:
    _worker["tree"] = tree


def _problem(name: str) -> tuple[str, str] | None:
    """(where, problem) when the image `name` of this process's tree does not decode."""
    from imgdag import codec  # here, not at the top: a pass-through .rec copy never loads OpenCV

    tree = _worker["tree"]
    fault_point("check")
    try:
        codec.check_image(tree.read_bytes(name), tree.where(name))
    except DataError as e:
        return e.path, e.problem
    return None


def _named_problem(name: str) -> tuple[str, tuple[str, str] | None]:
    return name, _problem(name)


def decoding(tree: "FileTree", names: Iterable[str], check: ImageCheck, desc: str, bad: dict,
             total: int | None = None) -> Iterator[str]:
    """The names of `names` (a list, or a generator: it is read as the workers go) whose images
    decode, in order; those that do not go into `bad` ({where: problem}), or with
    check.bad_images "error" the first is a DataError naming it."""
    from imgdag.layouts.tree import DirTree, FolderTree

    with ExitStack() as stack:
        if check.workers > 1 and isinstance(tree, (DirTree, FolderTree)) and (total is None or total > CHUNK):
            pool = stack.enter_context(process_pool(check.workers, _use_tree, (tree,)))
            results = pool.imap(_named_problem, names, chunksize=CHUNK)
        else:
            _use_tree(tree)
            stack.callback(_worker.clear)
            results = map(_named_problem, names)
        for name, problem in tqdm(results, total=total, desc=desc, unit="img", mininterval=1):
            if problem is None:
                yield name
            elif check.bad_images == "error":
                raise DataError(*problem)
            else:
                bad[problem[0]] = problem[1]


def bad_images(tree: "FileTree", names: list[str], check: ImageCheck, desc: str) -> dict[str, str]:
    """{where: problem} of the images `names` of `tree` that do not decode; with
    check.bad_images "error", a DataError naming the first instead."""
    bad: dict[str, str] = {}
    for _ in decoding(tree, names, check, desc, bad, total=len(names)):
        pass
    return bad


def warn_skipped(source, skipped: list[str]) -> None:
    """Name every skipped image (one line each) in a warning about `source`."""
    if skipped:
        warnings.warn(f"{source}: skipped {len(skipped)} images:\n  " + "\n  ".join(skipped), stacklevel=3)


def check_reading(reading, check: ImageCheck | None) -> None:
    """Check the images of every split of a LayoutReading that has a tree: drop those that do
    not decode (counted in reading.skipped, named in a warning), or raise naming the first
    (check.bad_images). None checks nothing (a reading of paths only)."""
    for name, split in reading.splits.items() if check is not None else ():
        if split.tree is None:
            continue
        bad = bad_images(split.tree, [r.path for r in split.records], check, f"check {name} images")
        if bad:
            split.records = [r for r in split.records if split.tree.where(r.path) not in bad]
            reading.skipped[f"{name}: images that do not decode"] += len(bad)
            warn_skipped(split.tree.where(), [f"{where}: {problem}" for where, problem in bad.items()])


def add_bad_images_argument(p) -> None:
    """A conversion script's --bad-images."""
    p.add_argument("--bad-images", choices=BAD_IMAGES, default="skip",
                   help="an image that does not decode: skip it (counted, and named in a warning), "
                        "or stop with an error naming it (params.yaml checks.bad_images)")


def add_check_arguments(p) -> None:
    """A conversion script's --bad-images and --workers (read back with `from_arguments`)."""
    add_bad_images_argument(p)
    p.add_argument("--workers", type=int, default=1, help="processes checking that the images decode")


def from_arguments(args) -> ImageCheck:
    return ImageCheck(args.bad_images, args.workers)
