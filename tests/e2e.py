"""Helpers for end-to-end tests: a throw-away copy of the repository and running its CLIs."""
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_repo(dest: Path) -> Path:
    """Copy the repository's source files (tracked and untracked-not-ignored, but no pipeline
    results) into a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not name.startswith(("results/", "data/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], dest)
    return dest


def clone_workspace(source: Path, dest: Path) -> Path:
    """A private copy of a finished workspace (`cp -a`: git, DVC and Snakemake metadata, data/
    and results/ with their modification times), for a test that changes files."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return dest


def cli_env() -> dict:
    """The environment for the CLIs: the project's venv first on PATH, no DVC analytics."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def sh(args, cwd, check: bool = True, timeout: int = 900,
       env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command (with `env` added to the environment); on failure the assertion shows its
    output."""
    done = subprocess.run(args, cwd=cwd, env={**cli_env(), **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, (f"{' '.join(map(str, args))} exited {done.returncode}\n"
                                      f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def script(name, *args, ok: bool = True) -> subprocess.CompletedProcess:
    """Run scripts/<name> with this interpreter; assert it succeeded (or failed, with ok=False)."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, env=cli_env(), timeout=300)
    assert (done.returncode == 0) == ok, done.stderr
    return done


def run_script_here(monkeypatch, name, *args):
    """Run scripts/NAME in this process (no interpreter start-up; its forked workers inherit
    monkeypatches); returns its exit code."""
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    try:
        runpy.run_path(str(ROOT / "scripts" / name), run_name="__main__")
    except SystemExit as e:
        return e.code
    return 0
