"""Every script answers --help with its description and exits 0."""
import pytest

from e2e import ROOT, sh

SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    done = sh(["python", ROOT / "scripts" / script, "--help"], ROOT)
    assert done.stdout.startswith("usage:") and "-h, --help" in done.stdout
