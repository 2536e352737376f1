"""classes.txt: the class order of a written format, one class name (WNID or breed) a line.

Line i (from 0) is the class with label i. The reader also takes synset_words.txt or
wnids.txt style files: only the first whitespace-separated token of each line counts.
"""
from pathlib import Path

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.textfiles import read_lines


def write_class_list(path, classes: list[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{c}\n" for c in classes)


def read_class_list(path) -> list[str]:
    """The class names of `path`, line i giving label i. Blank lines may only end the file: one
    inside it would shift every later label."""
    path = Path(path)
    lines = list(read_lines(path, "one class name a line"))
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [number for number, line in enumerate(lines, 1) if not line.strip()]
    if blank:
        raise DataError(path, f"line {blank[0]} is blank (line i names the class of label i-1; "
                              "a blank line would shift every later label)")
    classes = [line.split()[0] for line in lines]
    if not classes:
        raise DataError(path, "no classes (expected one class name a line)")
    if len(set(classes)) != len(classes):
        raise DataError(path, "a class appears twice")
    return classes
