"""Clear the lock that a killed Snakemake left in .snakemake/locks (snakemake --unlock), only when
no Snakemake process works in this folder: --unlock clears a live run's lock just the same, and
a second run would then write beside it. After a crash: `python scripts/unlock.py && snakemake --cores all`."""
import subprocess
import sys
from pathlib import Path

import psutil

from imgdag.cli import parser, run
from imgdag.errors import DataError
from imgdag.faults import runs


def snakemakes_in(folder: Path) -> list[int]:
    """The pids of the Snakemake processes whose working directory is `folder`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline, cwd = proc.info["cmdline"], proc.info["cwd"]
        if cmdline and cwd and runs("snakemake", cmdline) and Path(cwd).resolve() == folder:
            found.append(proc.pid)
    return found


def main() -> None:
    parser(__doc__).parse_args()
    folder = Path.cwd().resolve()
    live = snakemakes_in(folder)
    if live:
        raise DataError(folder, f"Snakemake is running here (pid {', '.join(map(str, live))}): its lock is "
                                "live; wait for it or stop it, then rerun")
    sys.exit(subprocess.run([sys.executable, "-m", "snakemake", "--unlock"]).returncode)


if __name__ == "__main__":
    run(main)
