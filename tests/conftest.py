"""Shared fixtures: the repository root, the real-data folder (skipped when absent)."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("IMGDAG_REALDATA", ROOT.parent / "shared" / "realdata"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def realdata_path(name: str) -> Path:
    """Path of ../shared/realdata/<name>; skips the test with a reason when it is absent."""
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (only the project's shared checkout has it)")
    return path
