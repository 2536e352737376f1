"""Every ratio of issue 8 from the benchmarks' JSON in one table: what, ours, the peer, the ratio
of the medians and of the minima (> 1: we are faster, or the goal's direction says), the goal,
and the load averages the run saw. Prints the table and writes summary.json beside the inputs.

`make bench` runs it last; `python benchmarks/summary.py [folder]` (default benchmarks/out).
A missing benchmark file is a row saying so, never a silent gap. `--against OLD` (an earlier
run's summary.json, or its folder) adds whether this run reproduces that one: each row both
hold, its median ratio then and now, the rows that moved more than REPRODUCED (issue 17: a
fresh clone's `make bench` reproduces every claimed figure within 15%) and the goals met in
one run only; summary.json gets them under "against".
"""
import argparse
import json
import sys
from pathlib import Path

from timing import OUT

REPRODUCED = 0.15  # a median ratio within this fraction of the earlier run's reproduces it


def rate(side: dict, unit: str = "img") -> float:
    return side[f"median_{unit}_per_s"]


def faster(ours: dict, peer: dict) -> dict:
    """Our rate over the peer's, of the medians and of the best runs."""
    return {"median": round(ours["median_img_per_s"] / peer["median_img_per_s"], 2),
            "min": round(ours["best_img_per_s"] / peer["best_img_per_s"], 2)}


def row(what, ours, peer, ratio, goal=None, load=None) -> dict:
    """One line: ours and peer as text, ratio {"median", "min"} or a number, goal (">= x" or
    "<= x") checked against the median."""
    median = ratio["median"] if isinstance(ratio, dict) else ratio
    met = None
    if goal is not None and median is not None:
        sign, bound = goal.split()
        met = median >= float(bound) if sign == ">=" else median <= float(bound)
    return {"what": what, "ours": ours, "peer": peer,
            "ratio_median": median, "ratio_min": ratio.get("min") if isinstance(ratio, dict) else None,
            "goal": goal, "met": met, "load": load}


def loads(result: dict) -> str:
    start = result.get("load_average_1_5_15", [None])[0]
    end = result.get("load_average_at_end", [None])[0]
    return f"{start} -> {end}"


def codec_rows(r):
    fast = r["fast_dct_pixels"]["crop_224"]["mean_abs_diff"]

    def versus(what, task, ours, peer):
        t = r[task]
        return row(what, f"{rate(t[ours])} img/s", f"{rate(t[peer])} img/s", faster(t[ours], t[peer]), load=loads(r))

    rows = [
        versus("codec decode: simplejpeg (imgdag) vs Pillow", "decode", "imgdag_codec", "pillow"),
        versus("codec decode: OpenCV vs Pillow", "decode", "opencv", "pillow"),
        versus("codec decode to 256: DCT downscale vs Pillow draft", "decode_256", "imgdag_codec_dct", "pillow_draft"),
        versus("codec crop 224: DCT downscale vs full decode", "crop_224", "imgdag_codec_dct", "full_decode_then_crop"),
        versus(f"codec crop 224: fast DCT vs exact (mean |diff| {fast} levels)", "crop_224", "imgdag_codec_dct_fast",
               "imgdag_codec_dct"),
        versus("codec encode q95: simplejpeg (imgdag) vs OpenCV", "encode_q95", "imgdag_codec", "opencv"),
    ]
    if "pyvips" in r["decode"]:
        rows += [
            versus("codec decode: imgdag vs pyvips", "decode", "imgdag_codec", "pyvips"),
            versus("codec decode to 256: imgdag vs pyvips shrink-on-load", "decode_256", "imgdag_codec_dct",
                   "pyvips_shrink_on_load"),
            versus("codec encode q95: imgdag vs pyvips", "encode_q95", "imgdag_codec", "pyvips"),
        ]
    return rows


def condition(r) -> str:
    """" (with N competitors)" when the run had CPU-bound competitors beside it, else ""."""
    return f" (with {r['competitors']} competitors)" if r.get("competitors") else ""


def pack_rows(r):
    """Issue 17's goals: resize >= 2.0x im2rec quiet, 1.5x loaded; pass-through >= 0.8x cat from
    100 MB up. Each at two sizes, and per image (MB) beyond the smaller one: start-up excluded."""
    loaded, goal = condition(r), ">= 1.5" if condition(r) else ">= 2.0"
    copy_goal = None if loaded else ">= 0.8"
    rows = []
    for job in ("resize", "resize_large"):
        s = r[job]
        rows.append(row(f"pack resize 256 q95, {s['entries']} img, vs im2rec{loaded}", f"{rate(s['ours'])} img/s",
                        f"{rate(s['im2rec'])} img/s", s["ratio_im2rec_s_over_ours_s"], goal, loads(r)))
    beyond = r["resize_large"]["beyond_start"]
    rows.append(row(f"pack resize per image beyond the first {r['resize']['entries']} vs im2rec{loaded}",
                    f"{beyond['ours_s_per_unit'] * 1e3:.3f} ms/img", f"{beyond['im2rec_s_per_unit'] * 1e3:.3f} ms/img",
                    beyond["ratio_im2rec_over_ours"], goal, loads(r)))
    p = r["pass_through"]
    rows.append(row(f"pack pass-through ({p['listed_mb']} MB) vs im2rec{loaded}",
                    f"{rate(p['ours'], 'mb')} MB/s (byte-identical: {p.get('rec_identical_to_im2rec')})",
                    f"{rate(p['im2rec'], 'mb')} MB/s", p["ratio_im2rec_s_over_ours_s"], load=loads(r)))
    for job in ("pass_through_small", "pass_through"):
        p = r[job]
        rows.append(row(f"pack pass-through ({p['listed_mb']} MB) vs cat{loaded}", f"{rate(p['ours'], 'mb')} MB/s",
                        f"{rate(p['cat'], 'mb')} MB/s", p["ratio_cat_s_over_ours_s"], copy_goal, loads(r)))
    beyond = r["pass_through"]["beyond_start"]
    rows.append(row(f"pack pass-through per MB beyond the first {r['pass_through_small']['listed_mb']} MB vs cat"
                    f"{loaded}", f"{1 / beyond['ours_s_per_unit']:.0f} MB/s", f"{1 / beyond['cat_s_per_unit']:.0f} MB/s",
                    beyond["ratio_cat_over_ours"], load=loads(r)))
    for job in ("resize", "pass_through"):
        ours, peer = r[job]["ours"]["max_peak_tree_rss_mb"], r[job]["im2rec"]["max_peak_tree_rss_mb"]
        rows.append(row(f"pack {job} peak RSS (process tree, MB; ratio peer/ours){loaded}", f"{ours} MB", f"{peer} MB",
                        round(peer / ours, 2), load=loads(r)))
    return rows


def rec_loader_rows(r):
    """Plain read + decode against MXNet, then per record size and epoch our training loader
    against each peer's; a peer left out (its package absent) is a row saying so, the JSON why.
    Issue 17's goals: >= 1.5x ImageRecordIter and >= 1.0x DALI quiet, >= 1.0x both loaded."""
    loaded = condition(r)
    def versus(what, sides, peer, ratio_key, goal=None):
        if peer not in sides:
            return row(what, f"{rate(sides['ours'])} img/s", "not measured (see the JSON)", None, load=loads(r))
        return row(what, f"{rate(sides['ours'])} img/s", f"{rate(sides[peer])} img/s", sides[ratio_key], goal, loads(r))

    rows = [versus(f".rec read + decode vs MXIndexedRecordIO + unpack_img{loaded}", r["decode"], "mxnet",
                   "ratio_mxnet_s_over_ours_s")]
    peers = {"mxnet": ("ImageRecordIter", ">= 1.0" if loaded else ">= 1.5"), "dali": ("DALI CPU pipeline", ">= 1.0"),
             "decode_limit": ("bare read + decode, as many threads", None)}
    for size, entry in r["loader"].items():
        for epoch in ("epoch_1", "epoch_2"):
            for peer, (name, goal) in peers.items():
                if peer == "decode_limit" and peer not in entry[epoch]:
                    continue  # not measured before this side existed
                rows.append(versus(f"train loader {size} records, {epoch.replace('_', ' ')}, {r['workers']} workers "
                                   f"vs {name}{loaded}", entry[epoch], peer, f"ratio_ours_over_{peer}_img_per_s", goal))
    return rows


def small_images_rows(r):
    s, q = r["sides"], r["ratios"]
    rows = [row("small images data path (crop + mirror) vs ImageFolder + DataLoader",
                f"{rate(s['imgdag_crop_flip'])} img/s", f"{rate(s['imagefolder_dataloader'])} img/s",
                q["data_path_vs_imagefolder"], ">= 15", loads(r)),
            row("small images cache build: img/s itself (not a ratio)", f"{rate(s['cache_build'])} img/s",
                f"Pillow 1 process {rate(s['pillow_decode_1_process'])} img/s",
                {"median": rate(s["cache_build"]), "min": s["cache_build"]["best_img_per_s"]}, ">= 5000", loads(r)),
            row("small images end to end, ResNet-18 steps, vs ImageFolder", f"{rate(s['e2e_imgdag'])} img/s",
                f"{rate(s['e2e_imagefolder'])} img/s", q["end_to_end_resnet18_vs_imagefolder"], load=loads(r))]
    if r.get("baseline"):
        rows.append(row("small images data path vs the baseline checkout's, each in its own process",
                        f"{rate(s['crop_flip_child_ours'])} img/s (identical batches: "
                        f"{r['batches_identical_to_baseline']})", f"{rate(s['crop_flip_child_baseline'])} img/s",
                        q["crop_flip_child_baseline_s_over_ours"], load=loads(r)))
    return rows


def tiny_cache_rows(r):
    s, q = r["sides"], r["ratios"]
    rows = [row(f"Tiny cache job ({r['images']} img of a {r['files_in_raw_tree']}-file tree) vs bare Pillow, "
                f"{r['workers']} processes", f"{rate(s['cache_job'])} img/s", f"{rate(s['bare_decode'])} img/s",
                q["cache_job_vs_bare_decode"], ">= 0.8", loads(r))]
    if r.get("baseline"):
        for job, unit in (("cache", "img"), ("index", "file")):
            rows.append(row(f"Tiny {job} job from the command line vs the baseline checkout's",
                            f"{rate(s[f'{job}_job_cli_ours'], unit)} {unit}/s",
                            f"{rate(s[f'{job}_job_cli_baseline'], unit)} {unit}/s",
                            q[f"{job}_job_cli_baseline_s_over_ours"], load=loads(r)))
    return rows


def threads_rows(r):
    rule = f"rule ({r['rule_threads']})"
    rows = []
    for condition, c in r["conditions"].items():
        best = min(s["median_s"] for name, s in c["sides"].items() if "before" not in name)
        load = f"{min(c['load_average_1min'])}-{max(c['load_average_1min'])}"
        rows.append(row(f"threads: rule's over the best count, {condition} (epoch seconds)",
                        f"{c['sides'][rule]['median_s']} s", f"best {best} s", c["rule_over_best"], "<= 1.2", load))
    return rows


def mnist_rows(r):
    return [row("MNIST LeNet-5 epoch vs ImageFolder + DataLoader", f"{rate(r['imgdag'])} img/s",
                f"{rate(r['imagefolder'])} img/s", r["ratio_imagefolder_s_over_ours_s"], load=loads(r))]


def scale_rows(r):
    """Per conversion step: ms per image at each size over the smallest size's (goal <= 1.15),
    then the largest process's peak memory at the largest size over the smallest's (and its
    growth per image)."""
    sizes = sorted(r["sizes"], key=int)
    small, large = sizes[0], sizes[-1]
    rows = []
    for step, entry in r["scaling"].items():
        for size, ratio in entry["ms_per_img_ratio_vs_smallest"].items():
            once = " (one repeat)" if r["repeats"][size] == 1 else ""
            rows.append(row(f"scale: {step} ms/img at {size} img vs {small}{once}",
                            f"{r['sizes'][size]['steps'][step]['ms_per_img_median']} ms/img",
                            f"{r['sizes'][small]['steps'][step]['ms_per_img_median']} ms/img", ratio, "<= 1.15",
                            loads(r)))
        if "peak_rss_ratio_largest_vs_smallest" in entry:
            rss = [r["sizes"][n]["steps"][step]["max_process_rss_mb"] for n in (large, small)]
            rows.append(row(f"scale: {step} peak RSS {large} vs {small} img, "
                            f"{entry['process_rss_kb_per_img_marginal']:+} KB/img",
                            f"{rss[0]} MB", f"{rss[1]} MB", entry["peak_rss_ratio_largest_vs_smallest"]["process"],
                            load=loads(r)))
    return rows


def dag_scale_rows(r):
    """Per check of a finished run (`snakemake -n`, `dvc status`): seconds at each size over the
    smallest size's (goal <= 1.15: no more than at 1k, issue 17). Per size, recording the run
    now against the way before 447fc9a (no goal: the issue asks that nothing be read twice)."""
    sizes = sorted(r["sizes"], key=int)
    small = r["sizes"][sizes[0]]["commands"]
    rows = []
    for name, entry in r["scaling"].items():
        for size, ratio in entry["seconds_ratio_vs_smallest"].items():
            rows.append(row(f"finished run: {name} at {size} img vs {sizes[0]}, "
                            f"{entry['ms_per_1000_images']:+} ms per 1k img",
                            f"{r['sizes'][size]['commands'][name]['median_s']} s", f"{small[name]['median_s']} s",
                            ratio, "<= 1.15", loads(r)))
    for size in sizes:
        record = r["sizes"][size].get("record")  # absent in runs before 3ef0ebf
        if record:
            rows.append(row(f"record a finished run at {size} img, now vs before 447fc9a",
                            f"{record['record']['median_s']} s", f"{record['record_before_447fc9a']['median_s']} s",
                            record["before_447fc9a_over_record"], load=loads(r)))
    return rows


SOURCES = {"codec": codec_rows, "pack": pack_rows, "pack_loaded": pack_rows, "rec_loader": rec_loader_rows,
           "rec_loader_loaded": rec_loader_rows,
           "small_images": small_images_rows, "tiny_cache": tiny_cache_rows, "threads": threads_rows,
           "mnist_epoch": mnist_rows, "scale": scale_rows, "dag_scale": dag_scale_rows}


def data_read(result: dict) -> str:
    """The data a benchmark's JSON says it read: its source folder and file count, if it names one."""
    files = result.get("source_files")
    return f"{result.get('source', '')}{f' ({files} files)' if files else ''}"


def collect(folder: Path) -> dict:
    rows, missing, data = [], [], {}
    for name, make_rows in SOURCES.items():
        path = folder / f"{name}.json"
        if not path.exists():
            bench = name.removesuffix("_loaded")
            how = " --competitors 2 --out " + str(path) if bench != name else ""
            missing.append(f"{path}: absent (run benchmarks/bench_{bench}.py{how})")
            continue
        result = json.loads(path.read_text())
        if result.get("source"):
            data[name] = data_read(result)
        try:
            rows += [dict(r, source=name, quick=result.get("quick", False)) for r in make_rows(result)]
        except KeyError as e:
            missing.append(f"{path}: no {e} (the peer's environment absent? see the file)")
    return {"rows": rows, "missing": missing, "data": data}


def table(summary: dict) -> str:
    lines = [f"{'what':<68} {'ours':>20} {'peer':>30} {'median':>7} {'min':>6} {'goal':>7} {'met':>5}  load"]
    for r in summary["rows"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"{r['what'][:68]:<68} {r['ours']:>20} {r['peer']:>30} {r['ratio_median']!s:>7} "
                     f"{r['ratio_min'] if r['ratio_min'] is not None else '':>6} {r['goal'] or '':>7} {met:>5}  "
                     f"{r['load']}{' (quick)' if r['quick'] else ''}")
    return "\n".join(lines + [f"missing: {m}" for m in summary["missing"]]
                     + [f"data of {name}: {read}" for name, read in summary["data"].items()])


def against(rows: list[dict], earlier: list[dict]) -> dict:
    """This run's rows beside an earlier run's, matched by benchmark and name: every pair's
    median ratios and change, those that moved more than REPRODUCED, goals met in one run only."""
    before = {(r["source"], r["what"]): r for r in earlier if not r["quick"]}
    pairs = []
    for r in rows:
        old = before.get((r["source"], r["what"]))
        if old is None or r["quick"] or not old["ratio_median"] or r["ratio_median"] is None:
            continue
        change = r["ratio_median"] / old["ratio_median"] - 1
        pairs.append({"what": r["what"], "then": old["ratio_median"], "now": r["ratio_median"],
                      "change": round(change, 3), "reproduced": abs(change) <= REPRODUCED,
                      "goal": r["goal"], "met_then": old["met"], "met_now": r["met"]})
    return {"pairs": pairs, "reproduced": sum(p["reproduced"] for p in pairs)}


def against_text(compared: dict, name: str) -> str:
    pairs = compared["pairs"]
    lines = [f"against {name}: {compared['reproduced']} of {len(pairs)} rows within {REPRODUCED:.0%} "
             "of its median ratio"]
    lines += [f"  moved {p['change']:+.0%}: {p['what']} ({p['then']} -> {p['now']})"
              for p in pairs if not p["reproduced"]]
    lines += [f"  goal {p['goal']} met {'then, not now' if p['met_then'] else 'now, not then'}: {p['what']} "
              f"({p['then']} -> {p['now']})" for p in pairs if p["met_then"] != p["met_now"]]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=str(OUT), help="where the benchmarks wrote their JSON")
    p.add_argument("--against", metavar="OLD", help="an earlier run's summary.json (or its folder) to compare with")
    args = p.parse_args()
    folder = Path(args.folder)
    result = collect(folder)
    text, failed = table(result), None
    if args.against:
        old = Path(args.against)
        old = old / "summary.json" if old.is_dir() else old
        try:  # on failure the run's own table and summary.json still come out
            earlier = json.loads(old.read_text())["rows"]
        except OSError as e:
            failed = f"summary.py: cannot compare with {old}: {e.strerror or e}"
        except (ValueError, KeyError, TypeError) as e:
            failed = f"summary.py: cannot compare with {old}: not a summary.json of this script ({e!r})"
        else:
            result["against"] = {"summary": str(old), **against(result["rows"], earlier)}
            text += "\n" + against_text(result["against"], str(old))
    from imgdag.atomic import atomic_open

    with atomic_open(folder / "summary.json") as f:
        json.dump(result, f, indent=2)
    print(text)
    if failed:
        sys.exit(failed)


if __name__ == "__main__":
    main()
