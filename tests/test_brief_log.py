"""scripts/brief_log.py on a real Snakemake run: one line per finished job, every failure with
its log kept."""
import subprocess
import sys

from e2e import ROOT, cli_env

SNAKEFILE = """
rule all:
    input: "b.txt", "c.txt"

rule a:
    input: {inputs}
    output: "a.txt"
    shell: "echo made > {{output}}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "echo 'b made a line of its own'; cp {{input}} {{output}}"

rule c:
    input: "a.txt"
    output: "c.txt"
    log: "c.log"
    shell: "echo 'error: c.png: not an image' > {{log}}; exit 1"
"""


def test_jobs_in_one_line_each_and_failures_in_full(tmp_path):
    inputs = [tmp_path / f"code{i}.py" for i in range(30)]  # a job's many code inputs
    for path in inputs:
        path.write_text("")
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(inputs=", ".join(f'"{p.name}"' for p in inputs)))
    done = subprocess.run(f"snakemake --cores 1 --printshellcmds --show-failed-logs 2>&1 | "
                          f"{sys.executable} {ROOT / 'scripts/brief_log.py'}", shell=True,
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert "] a done" in out and "] b done" in out, out
    assert "4 jobs to run" in out and "Job stats" not in out
    assert "b made a line of its own" in out  # a job's own output passes through
    assert "Error in rule c:" in out and "error: c.png: not an image" in out  # the log, in full
    assert "    log: c.log" in out  # and the failed job's fields
    assert "code7.py" not in out and "Shell command" not in out and "\nrule a:" not in out
    full = subprocess.run(["snakemake", "--cores", "1", "--forceall", "--printshellcmds", "--show-failed-logs"],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert len(out.splitlines()) < len((full.stdout + full.stderr).splitlines()) - 10
