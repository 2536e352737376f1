"""Packing speed and memory: our scripts/make_rec.py against MXNet 1.9.1's tools/im2rec.py.

The real ImageNet sample JPEGs (../shared/realdata/imagenet-sample, 100 files; or the JPEGs under
IMGDAG_BENCH_JPEGS, timing.py) listed over and over in one .lst (the files stay in the page cache
for both tools). The jobs, each run from the command line, whole (start-up included), interleaved
ours / im2rec (/ cat) per repeat, same .lst and worker count:
- resize: `--resize 256 --quality 95`, images/s, at --images and at --large-images entries;
- pass-through: `--pass-through --images-checked` (one label per entry; the copy the imagenet-8
  recipe runs after its map writer checked the images) on >= 400 MB of listed files, MB/s, against
  `cat` of the same files into one file; the .rec files must be byte-identical to im2rec's;
  pass-through-small: the same on >= 100 MB;
- pass-through-check: the same with each image decode-checked while packing (plain `--pass-through`).
A whole command's time holds its start-up (MXNet's import takes about a second), so each tool's
cost per image (or MB) beyond the smaller size is also given ("beyond_start"): the two sizes'
median seconds apart over their work apart, and ours against the peer's as a ratio.
Each command starts with no dirty pages (an untimed sync before it) and with its outputs of the
previous repeat removed (untimed), as Snakemake and DVC remove a job's outputs before running it:
ext4 writes out the whole of a file that replaces another (a rename over it, or a truncation
before writing: `cat > existing`) when it is closed or renamed, a second for 400 MB here, which
timed the file system's write-back instead of the tool in every repeat but the first. Peak memory is sampled
over each command's whole process tree (and its largest process).
`--baseline CHECKOUT` also times another checkout's make_rec.py (e.g. the main branch before a
change) in the same interleaving, and checks its .rec is byte-identical to ours.
Writes benchmarks/out/pack.json. `--quick`: a few images, one repeat (a smoke test, not timed).
"""
import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import (JPEGS, MXNET_PYTHON, ROOT, add_competitors_option, competing, context, interleaved, jpeg_name,
                    jpegs_source, ratio, real_jpegs, run_command, summary, write_result)

from imgdag.formats.lst import LstEntry, write_lst


def im2rec_path() -> Path:
    code = "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'im2rec.py'))"
    out = subprocess.run([MXNET_PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout
    return Path(out.strip().splitlines()[-1])


def repeated_lst(path: Path, files: list[Path], count: int) -> int:
    """A .lst of `count` entries cycling through `files` (labels: class index % 10); its bytes."""
    entries = [LstEntry(i, (float(i % 10),), jpeg_name(files[i % len(files)])) for i in range(count)]
    write_lst(path, entries)
    return sum(files[i % len(files)].stat().st_size for i in range(count))

JOBS = ["resize", "resize_large", "pass_through_small", "pass_through", "pass_through_check"]
SIZE_PAIRS = {"resize": "resize_large", "pass_through_small": "pass_through"}  # smaller job: larger job


def after_sync(run, outputs):
    """`run`, started with its `outputs` removed and no dirty pages (os.sync first; neither is
    timed), so that the write-back of one command's 400 MB does not slow down the next command,
    whichever side it is, and each command writes new files (see the module docstring)."""
    def synced():
        for path in outputs:
            Path(path).unlink(missing_ok=True)
        os.sync()
        return run()
    return synced


def beyond_start(small: dict, large: dict) -> dict:
    """Each tool's median seconds per unit of work beyond the smaller job (start-up cancels out),
    and the peers' over ours."""
    apart = large["work"] - small["work"]
    if apart <= 0:
        raise SystemExit(f"bench_pack.py: the larger job lists no more than the smaller ({large['work']} and "
                         f"{small['work']}): give sizes further apart")
    per_unit = {name: (large[name]["median_s"] - small[name]["median_s"]) / apart
                for name in large if isinstance(large[name], dict) and "median_s" in large[name] and name in small}
    out = {f"{name}_s_per_unit": round(s, 6) for name, s in per_unit.items()}
    for name, s in per_unit.items():
        if name != "ours" and per_unit["ours"] > 0:
            out[f"ratio_{name}_over_ours"] = round(s / per_unit["ours"], 2)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--images", type=int, default=1000, help="entries of the resize .lst")
    p.add_argument("--large-images", type=int, default=4000, help="entries of the resize_large .lst")
    p.add_argument("--pass-through-mb", type=int, default=400, help="listed MB for the pass-through job")
    p.add_argument("--small-pass-through-mb", type=int, default=100, help="listed MB for pass_through_small")
    p.add_argument("--workers", type=int, default=2, help="our --num-workers and im2rec's --num-thread")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke test: 20 and 40 images, 5 and 12 MB, one repeat")
    p.add_argument("--baseline", help="another checkout whose scripts/make_rec.py to time as 'baseline'")
    p.add_argument("--jobs", nargs="+", choices=JOBS, default=JOBS)
    add_competitors_option(p)
    p.add_argument("--out", help="JSON output (default benchmarks/out/pack.json)")
    args = p.parse_args()
    if args.quick:
        args.images, args.large_images, args.pass_through_mb, args.small_pass_through_mb, args.repeats = \
            20, 40, 12, 5, 1
    files = real_jpegs()
    root = JPEGS
    have_mxnet = MXNET_PYTHON.exists()
    im2rec = im2rec_path() if have_mxnet else None
    result = {**context(), "quick": args.quick, "workers": args.workers, "repeats": args.repeats,
              "competitors": args.competitors, **jpegs_source(files), "baseline": args.baseline}
    work = Path(tempfile.mkdtemp(prefix="bench-pack-"))
    try:
        def pass_count(mb):  # entries listing at least `mb` MB, whole cycles of the files
            return -(-mb * 2**20 // sum(f.stat().st_size for f in files)) * len(files)

        resize, copy, checked = ["--resize", 256, "--quality", 95], ["--pass-through"], ["--images-checked"]
        jobs = {  # job: (flags of both tools, flags of ours only, entries, unit)
            "resize": (resize, [], args.images, "img"),
            "resize_large": (resize, [], args.large_images, "img"),
            "pass_through_small": (copy, checked, pass_count(args.small_pass_through_mb), "mb"),
            "pass_through": (copy, checked, pass_count(args.pass_through_mb), "mb"),
            "pass_through_check": (copy, [], pass_count(args.pass_through_mb), "mb"),
        }
        for job in args.jobs:
            flags, ours_only, count, unit = jobs[job]
            copying = job.startswith("pass_through")
            lst = work / f"{job}.lst"
            listed_bytes = repeated_lst(lst, files, count)
            work_done = count if unit == "img" else listed_bytes / 2**20
            ours_rec, mx_rec = work / f"ours-{job}.rec", work / f"mx-{job}" / f"{job}.rec"
            mx_rec.parent.mkdir()
            shutil.copy(lst, mx_rec.with_suffix(".lst"))
            runs = {"ours": lambda: run_command([sys.executable, ROOT / "scripts" / "make_rec.py", lst, root,
                                                 "--rec", ours_rec, "--num-workers", args.workers, *flags, *ours_only])}
            if args.baseline:
                base_rec, base_env = work / f"base-{job}.rec", {**os.environ, "PYTHONPATH": args.baseline}
                runs["baseline"] = lambda: run_command([sys.executable, Path(args.baseline) / "scripts" / "make_rec.py",
                                                        lst, root, "--rec", base_rec, "--num-workers", args.workers,
                                                        *flags, *ours_only], env=base_env)
            if have_mxnet:
                runs["im2rec"] = lambda: run_command([MXNET_PYTHON, im2rec, mx_rec.with_suffix(""), root,
                                                      "--num-thread", args.workers, *flags], cwd=work)
            if copying:
                paths = [str(files[i % len(files)]) for i in range(count)]
                (work / "cat.args").write_text("\0".join(paths))
                runs["cat"] = lambda: run_command(
                    ["sh", "-c", f"xargs -0 cat < {work / 'cat.args'} > {work / 'cat.out'}"])
            outputs = {"ours": [ours_rec], "im2rec": [mx_rec], "cat": [work / "cat.out"]}
            if args.baseline:
                outputs["baseline"] = [base_rec]
            synced = {name: after_sync(run, [p for rec in outputs[name] for p in (rec, rec.with_suffix(".idx"))])
                      for name, run in runs.items()}
            with competing(args.competitors):
                timed = interleaved(synced, args.repeats)
            measured = {name: summary(r, work_done, unit) for name, r in timed.items()}
            entry = {"entries": count, "listed_mb": round(listed_bytes / 2**20, 1), **measured}
            if have_mxnet:
                entry["ratio_im2rec_s_over_ours_s"] = ratio(measured["ours"], measured["im2rec"])
            if args.baseline:
                entry["ratio_baseline_s_over_ours_s"] = ratio(measured["ours"], measured["baseline"])
                if copying:
                    entry["rec_identical_to_baseline"] = filecmp.cmp(ours_rec, base_rec, shallow=False)
            if copying:
                entry["ratio_cat_s_over_ours_s"] = ratio(measured["ours"], measured["cat"])
                if have_mxnet:
                    entry["rec_identical_to_im2rec"] = filecmp.cmp(ours_rec, mx_rec, shallow=False)
            entry["work"] = work_done
            result[job] = entry
        for small, large in SIZE_PAIRS.items():
            if small in result and large in result:
                result[large]["beyond_start"] = beyond_start(result[small], result[large])
        if not have_mxnet:
            result["im2rec"] = f"not measured: {MXNET_PYTHON} is absent (bash scripts/setup_mxnet_env.sh)"
    finally:
        shutil.rmtree(work)
    write_result("pack", result, args.out)


if __name__ == "__main__":
    main()
