"""Run scripts/train.py (under torchrun, for tests/test_ddp.py), noting what this rank writes.

The paths under $PROBE_OUT that this process opens for writing, creates or renames onto are
listed in $PROBE_OUT/../writes.<RANK>.json.
"""
import json
import os
import runpy
import sys
from pathlib import Path

OUT = os.environ["PROBE_OUT"]
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
written = []


def record(event: str, args: tuple) -> None:
    """Audit hook: keep write-opens, mkdirs and rename targets under OUT."""
    if event == "open" and args[2] & WRITE_FLAGS:
        path = args[0]
    elif event == "os.mkdir":
        path = args[0]
    elif event == "os.rename":
        path = args[1]
    else:
        return
    if isinstance(path, (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(path))
        if path.startswith(OUT + os.sep):
            written.append(os.path.relpath(path, OUT))


script = str(Path(__file__).resolve().parents[1] / "scripts" / "train.py")
sys.argv = [script, *sys.argv[1:]]
sys.addaudithook(record)
try:
    runpy.run_path(script, run_name="__main__")
finally:
    report = json.dumps(written)
    Path(OUT).parent.joinpath(f"writes.{os.environ.get('RANK', '0')}.json").write_text(report)
