"""Helpers shared by the thin scripts in scripts/: argument parsing and clean error exits."""
import argparse
import errno
import json
import os
import sys

from imgdag.errors import DataError, WorkerDied
from imgdag.faults import stop_with_snakemake


def parser(description: str) -> argparse.ArgumentParser:
    """An argparse parser whose --help shows defaults."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


# a smoke run's images per class: `snakemake --config subset=N` gives every job this variable
# (rules/common.smk), the default of the layout readers' --subset
SUBSET_ENV = "IMGDAG_SUBSET"


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return value


def add_subset_argument(p: argparse.ArgumentParser) -> None:
    """A layout reader's --subset (a smoke run), by default from the environment's SUBSET_ENV."""
    p.add_argument("--subset", type=positive_int, metavar="N", default=os.environ.get(SUBSET_ENV) or None,
                   help="keep only the first N images of each class by name (of unlabelled test images, "
                        f"N x the class count), for a smoke run; default: ${SUBSET_ENV}, which "
                        "`snakemake --config subset=N` sets for its jobs (unset: every image)")


def json_object(text: str) -> dict:
    """argparse type for --params: a JSON object (Snakemake passes a params.yaml section)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def run(main) -> None:
    """Run main(); bad input, a full disk and a dead worker process exit 1 with one clear line
    instead of a traceback.
    A job started by Snakemake ends when that Snakemake process is gone (imgdag.faults)."""
    stop_with_snakemake()
    try:
        main()
    except (DataError, WorkerDied) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(f"error: {e.filename or 'an output'}: no space left on the device; free space, then rerun",
              file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
