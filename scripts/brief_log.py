"""Snakemake's terminal output, briefly: `snakemake ... 2>&1 | python scripts/brief_log.py`.

Each finished job becomes one line (`[k/N] rule done`) and the job table one line (`N jobs to
run`); the block Snakemake prints when a job
starts (its ~30 code inputs, outputs, reason, resources, shell command), the timestamps and
blank lines are left out. Everything else passes through as it comes: the jobs' own output, warnings, and every
error with its log. The whole output is in the `Complete log(s)` file Snakemake names at the end.
"""
import re
import signal
import sys

from imgdag.cli import parser, run

JOB_START = re.compile(r"^(local)?rule \w+:$")  # then its indented fields
TIMESTAMP = re.compile(r"^\[\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}\]$")
FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)$")
STEPS = re.compile(r"^(\d+) of (\d+) steps \(.*\) done$")
DROPPED = ("Select jobs to execute...", "Shell command: ")
TABLE_ROW = re.compile(r"^(job +count|-+ +-+|\w+ +\d+)$")  # of the "Job stats:" table
TABLE_TOTAL = re.compile(r"^total +(\d+)$")  # its last row


def brief(lines):
    """Yield the lines to show for Snakemake's output `lines` (each ending in a newline)."""
    in_job_start, in_table, finished = False, False, None
    for line in lines:
        text = line.rstrip("\n")
        if text == "Job stats:":
            in_table = True
            continue
        if in_table and TABLE_ROW.match(text):
            if TABLE_TOTAL.match(text):
                yield f"{TABLE_TOTAL.match(text).group(1)} jobs to run (`snakemake -n` lists them)\n"
                in_table = False
            continue
        in_table = False  # a table without its total row ends at the first other line
        if in_job_start and text.startswith("    "):
            continue
        in_job_start = bool(JOB_START.match(text))
        if in_job_start or not text.strip() or TIMESTAMP.match(text) or text.startswith(DROPPED) \
                or re.match(r"^Execute \d+ jobs\.\.\.$", text):
            continue
        if FINISHED.match(text):
            finished = FINISHED.match(text).group(1)
            continue
        steps = STEPS.match(text)
        if steps and finished:
            yield f"[{steps.group(1)}/{steps.group(2)}] {finished} done\n"
            finished = None
            continue
        if finished:  # a Finished line without its count: show it as it was
            yield f"Finished: {finished}\n"
            finished = None
        yield line


def main() -> None:
    parser(__doc__).parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: relay Snakemake's shutdown to its end
    for line in brief(sys.stdin):
        sys.stdout.write(line)
        sys.stdout.flush()


if __name__ == "__main__":
    run(main)
