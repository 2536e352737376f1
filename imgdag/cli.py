"""Helpers shared by the thin scripts in scripts/: argument parsing and clean error exits."""
import argparse
import errno
import json
import sys

from imgdag.errors import DataError
from imgdag.faults import stop_with_snakemake


def parser(description: str) -> argparse.ArgumentParser:
    """An argparse parser whose --help shows defaults."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


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
    """Run main(); bad input and a full disk exit 1 with one clear line instead of a traceback.
    A job started by Snakemake ends when that Snakemake process is gone (imgdag.faults)."""
    stop_with_snakemake()
    try:
        main()
    except DataError as e:
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
