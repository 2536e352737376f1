"""What a finished run costs to check, by dataset size: `snakemake -n` and `dvc status` on a
workspace whose imagenet-8 conversion ran, at 1k, 10k and 100k images.

For each size a class-folder tree is generated as bench_scale.py does (8 classes, so that the
recipe's params fit), the working tree's source files are copied into a fresh git workspace, its
params.yaml points `datasets.imagenet8.raw` at the tree (a folder: read where it is, its state
file standing for it in the jobs that read it, rules/raw_state.smk) and dvc.yaml is written
again (`make dvc-yaml`). Snakemake runs the conversion (data/datasets.checked, the folder's
state file, the maps, both `.rec` + `.idx` with the recipe's pass-through), then `dvc commit`
records those 5 stages: the finished run of both doors. Then, interleaved over the sizes
(smallest first) for --repeats rounds, each a fresh process:
- snakemake_n: `snakemake -n` of the targets (nothing to do);
- dvc_status: `dvc status` of the 5 stages (up to date);
- dvc_status_raw_state: `dvc status raw_state-imagenet8`, the one stage whose dependency is the
  raw folder;
- dvc_status_maps: `dvc status imagenet8_maps`;
- dvc_status_rec: `dvc status` of the two `.rec` stages (their outputs: 3 GB at 100k).
Per command and size: median and min seconds and peak memory, then each size's median over the
smallest size's (issue 17: no more than at 1k; goal <= 1.15 here) and the growth in ms per
1,000 images.

Then recording the run as `scripts/sync_doors.py record` does it since 447fc9a, against the way
before it, on outputs made to look just written each time (DVC's cache emptied, each output
replaced by a copy with its time: a new inode DVC's state database does not know). Two sides,
interleaved per size for --repeats rounds:
- record: `.dvc/config`'s cache types (hardlink first: DVC moves each output into its cache, times
  kept), `dvc commit`, `snakemake -n` and `snakemake --touch` only where that plans jobs (a cache
  on another file system), `dvc status`;
- record_before_447fc9a: cache types `reflink,hardlink,copy` (without reflinks, as on ext4, DVC
  copies each output into its cache and links the copy back), `dvc commit`, `snakemake --touch`
  of every job and `snakemake -n`, `dvc status` (which reads each touched output again).
The `snakemake -n` that record runs before committing (the same both ways) is left out. Their
ratio per size (> 1: the product's way is faster) and whether each touched. Writes
benchmarks/out/dag_scale.json. `--quick`: 100 and 200 images, one repeat; `--competitors 2`: two
CPU-bound processes beside every timed round (the loaded condition).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bench_scale import make_tree
from timing import ROOT, add_competitors_option, competing, context, ratio, run_command, summary, write_result

BIN = Path(sys.executable).parent
TARGETS = ["data/datasets.checked", "data/imagenet8/train.rec", "data/imagenet8/val.rec"]
STAGES = ["datasets_checked", "raw_state-imagenet8", "imagenet8_maps", "imagenet8_rec-train", "imagenet8_rec-val"]
COMMANDS = {
    "snakemake_n": ["snakemake", "-n", *TARGETS],
    "dvc_status": ["dvc", "status", *STAGES],
    "dvc_status_raw_state": ["dvc", "status", "raw_state-imagenet8"],
    "dvc_status_maps": ["dvc", "status", "imagenet8_maps"],
    "dvc_status_rec": ["dvc", "status", "imagenet8_rec-train", "imagenet8_rec-val"],
}
UP_TO_DATE = {"snakemake_n": "Nothing to be done", "dvc_status": "up to date"}
RECORD_SIDES = {"record": (None, False), "record_before_447fc9a": ("reflink,hardlink,copy", True)}


def workspace(dest: Path, raw: Path, env: dict) -> None:
    """The working tree's source files in a fresh git repository, its imagenet-8 raw data `raw`,
    the conversion run by Snakemake and recorded by DVC."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and not name.startswith(("results/", "data/", "benchmarks/out/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    params = dest / "params.yaml"
    old = "raw: data/demo/imagenet8/imagenet-8.tar"
    if old not in params.read_text():
        sys.exit(f"{params}: no '{old}' line to point at the generated tree")
    params.write_text(params.read_text().replace(old, f"raw: {raw}"))
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"],
                    [BIN / "python", "scripts/write_dvc_yaml.py"], ["snakemake", "--cores", "2", *TARGETS],
                    ["dvc", "commit", "-f", *STAGES]):
        run_command(command, cwd=dest, env=env)


def checked(name: str, ws: Path, env: dict) -> dict:
    """One timed command in `ws`; exits when it finds work to do."""
    done = run_command(COMMANDS[name], cwd=ws, env=env, output=True)
    output = done.pop("output")
    if name in UP_TO_DATE and UP_TO_DATE[name] not in output:
        sys.exit(f"{ws}: {' '.join(COMMANDS[name])} finds work to do on the finished run")
    return done


def as_just_written(ws: Path) -> None:
    """The recorded outputs as Snakemake leaves them: DVC's cache emptied, each output file replaced
    by a writable copy with the same modification time (a new inode, unknown to DVC's state)."""
    shutil.rmtree(ws / ".dvc" / "cache", ignore_errors=True)
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    for stage in STAGES:
        for out in lock[stage].get("outs", []):
            path = ws / out["path"]
            for file in [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]:
                copy = file.with_name(file.name + ".bench-copy")
                shutil.copy2(file, copy)
                copy.chmod(0o644)
                os.replace(copy, file)


def recorded(ws: Path, env: dict, cache_type, always_touch: bool) -> dict:
    """Record the finished run with DVC's cache types `cache_type` (None: the working tree's), as
    sync_doors.py record does (touching every job also when `snakemake -n` has nothing to do
    with `always_touch`); the steps' summed seconds, peak memory, and whether it touched."""
    as_just_written(ws)
    shutil.copy2(ROOT / ".dvc" / "config", ws / ".dvc" / "config")
    if cache_type:
        run_command(["dvc", "config", "cache.type", cache_type], cwd=ws, env=env)
    steps = [run_command(["dvc", "commit", "-f", *STAGES], cwd=ws, env=env)]
    touched = always_touch
    if not always_touch:
        steps.append(run_command(COMMANDS["snakemake_n"], cwd=ws, env=env, output=True))
        touched = UP_TO_DATE["snakemake_n"] not in steps[-1].pop("output")
    if touched:
        steps.append(run_command(["snakemake", "--touch", "--forceall", "--cores", "1", *TARGETS], cwd=ws, env=env))
        steps.append(checked("snakemake_n", ws, env))
    steps.append(checked("dvc_status", ws, env))
    return {"seconds": sum(s["seconds"] for s in steps), "touched": touched,
            **{key: max(s[key] for s in steps) for key in ("peak_tree_rss_mb", "peak_process_rss_mb")}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000], help="train images per tree")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    p.add_argument("--quick", action="store_true", help="smoke test: 100 and 200 images, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/dag_scale.json)")
    add_competitors_option(p)
    args = p.parse_args()
    if args.quick:
        args.sizes, args.repeats = [100, 200], 1
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    result = {"bench": "dag_scale", "quick": args.quick, **context(), "repeats": args.repeats,
              "competitors": args.competitors, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="imgdag-dag-scale-") as tmp:
        sizes = sorted(args.sizes)
        for size in sizes:
            tree = make_tree(Path(tmp) / str(size) / "raw", size, 8, 0, 2)
            workspace(Path(tmp) / str(size) / "ws", Path(tmp) / str(size) / "raw", env)
            result["sizes"][str(size)] = {"tree": tree}
            print(f"{size} images: workspace ready", flush=True)
        runs = {(size, name): [] for size in sizes for name in COMMANDS}
        records = {(size, side): [] for size in sizes for side in RECORD_SIDES}
        with competing(args.competitors):
            for round_ in range(args.repeats):
                for size in sizes:
                    for name in COMMANDS:
                        runs[size, name].append(checked(name, Path(tmp) / str(size) / "ws", env))
                print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
            for round_ in range(args.repeats):
                for size in sizes:
                    for side in reversed(RECORD_SIDES):  # the product's way last: the workspace keeps it
                        ws = Path(tmp) / str(size) / "ws"
                        records[size, side].append(recorded(ws, env, *RECORD_SIDES[side]))
                print(f"record round {round_ + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
    small = sizes[0]
    for size in sizes:
        result["sizes"][str(size)]["commands"] = {name: summary(runs[size, name], 1, "run") for name in COMMANDS}
        record = {side: summary(records[size, side], 1, "run") for side in RECORD_SIDES}
        record["before_447fc9a_over_record"] = ratio(record["record"], record["record_before_447fc9a"])
        result["sizes"][str(size)]["record"] = record
    result["scaling"] = {}
    for name in COMMANDS:
        base = result["sizes"][str(small)]["commands"][name]
        result["scaling"][name] = {
            "seconds_ratio_vs_smallest": {
                str(size): {"median": round(result["sizes"][str(size)]["commands"][name]["median_s"]
                                            / base["median_s"], 3),
                            "min": round(result["sizes"][str(size)]["commands"][name]["min_s"] / base["min_s"], 3)}
                for size in sizes[1:]},
            "ms_per_1000_images": round(1000 * (result["sizes"][str(sizes[-1])]["commands"][name]["median_s"]
                                                - base["median_s"]) / (sizes[-1] - small) * 1000, 2),
        }
    write_result("dag_scale", result, args.out)


if __name__ == "__main__":
    main()
