"""`make bench-quick` as a smoke test (figures not timed): the fast benchmarks write their JSON
and the summary gathers their ratios into one table, naming the benchmarks it did not find; and
the pieces of the harness that a smoke test cannot check."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import realdata_path

ROOT = Path(__file__).resolve().parents[1]
FAST = {"codec": "decode", "mnist_epoch": "imgdag", "small_images": "sides", "tiny_cache": "sides", "scale": "sizes"}


@pytest.mark.realdata
def test_bench_quick_writes_json_and_one_summary_of_the_ratios(tmp_path):
    for needed in ("imagenet-sample", "tiny-imagenet-200", "mnist"):
        realdata_path(needed)  # skips when absent
    benches = " ".join(f"benchmarks/bench_{name}.py" for name in FAST)
    # this interpreter's venv; -o: it is there (make test built it), never rebuild it from a test
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(["make", "-o", f"{bin_dir}/.installed", "bench-quick", f"BENCHES={benches}",
                           f"QUICK_OUT={tmp_path}", f"BIN={bin_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name, key in FAST.items():
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert result["quick"] is True and key in result and "load_average_at_end" in result
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {row["source"] for row in summary["rows"]} == set(FAST)
    data_path = next(r for r in summary["rows"] if r["what"].startswith("small images data path"))
    assert data_path["goal"] == ">= 15" and data_path["ratio_median"] > 0 and data_path["quick"]
    assert sorted(m.split(".json")[0].rsplit("/", 1)[1] for m in summary["missing"]) == \
        ["dag_scale", "pack", "pack_loaded", "rec_loader", "rec_loader_loaded", "threads"]
    assert "small images data path" in done.stdout  # the table is printed


def test_competitors_run_beside_the_block_and_set_the_loaded_goals():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import summary
    import timing

    import psutil
    with timing.competing(2):
        busy = [c for c in psutil.Process().children() if timing.BUSY_LOOP in c.cmdline()]
        assert len(busy) == 2 and all(c.is_running() for c in busy)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in busy)
    side = {"median_img_per_s": 1.0, "best_img_per_s": 1.0, "median_mb_per_s": 1.0,
            "max_peak_tree_rss_mb": 1.0}
    job = {"ours": side, "im2rec": side, "cat": side, "listed_mb": 1, "entries": 10,
           "ratio_im2rec_s_over_ours_s": {"median": 1.7}, "ratio_cat_s_over_ours_s": {"median": 0.5}}
    large = {**job, "beyond_start": {"ours_s_per_unit": 1.0, "im2rec_s_per_unit": 1.4, "cat_s_per_unit": 0.5,
                                     "ratio_im2rec_over_ours": 1.4, "ratio_cat_over_ours": 0.5}}
    for competitors, goal, met in ((0, ">= 2.0", False), (2, ">= 1.5", True)):
        rows = summary.pack_rows({"resize": job, "resize_large": large, "pass_through_small": job,
                                  "pass_through": large, "competitors": competitors})
        assert (rows[0]["goal"], rows[0]["met"]) == (goal, met)
        assert ("competitors" in rows[0]["what"]) == bool(competitors)
        per_image = next(r for r in rows if "per image beyond" in r["what"])
        assert (per_image["ratio_median"], per_image["goal"], per_image["met"]) == (1.4, goal, False)


def test_competitors_end_with_a_benchmark_killed_before_its_cleanup():
    """A benchmark killed (SIGKILL: no cleanup runs) leaves no busy loop behind: one that was
    left loaded every later "quiet" run (it happened, 2026-12-06)."""
    import psutil
    code = ("import sys, time; sys.path.insert(0, 'benchmarks'); import timing\n"
            "with timing.competing(2):\n    print('started', flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "started"
        busy = psutil.Process(parent.pid).children()
        assert len(busy) == 2
    finally:
        parent.kill()
        parent.wait()
    gone, alive = psutil.wait_procs(busy, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


def test_the_summary_gives_the_dag_checks_scaling_and_the_record_ratio_per_size():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import summary

    def timed(seconds):
        return {"median_s": seconds, "min_s": seconds}

    def size(status, record, before):
        return {"commands": {"dvc_status": timed(status)},
                "record": {"record": timed(record), "record_before_447fc9a": timed(before),
                           "before_447fc9a_over_record": {"median": round(before / record, 2), "min": 1.0}}}

    result = {"sizes": {"1000": size(2.0, 10.0, 12.0), "100000": size(3.0, 20.0, 60.0)},
              "scaling": {"dvc_status": {"seconds_ratio_vs_smallest": {"100000": {"median": 1.5, "min": 1.4}},
                                         "ms_per_1000_images": 10.1}}}
    rows = summary.dag_scale_rows(result)
    status = [(r["ratio_median"], r["goal"], r["met"]) for r in rows if "dvc_status" in r["what"]]
    assert status == [(1.5, "<= 1.15", False)]
    records = [(r["what"].split(" img")[0], r["ours"], r["peer"], r["ratio_median"])
               for r in rows if r["what"].startswith("record")]
    assert records == [("record a finished run at 1000", "10.0 s", "12.0 s", 1.2),
                       ("record a finished run at 100000", "20.0 s", "60.0 s", 3.0)]
    del result["sizes"]["1000"]["record"], result["sizes"]["100000"]["record"]  # a run before the record sides
    assert len(summary.dag_scale_rows(result)) == 1


def test_the_summary_says_which_figures_an_earlier_run_reproduces(tmp_path):
    """--against: each row both runs hold, the ones that moved more than 15%, and a goal met in
    one run only; rows of a quick run are never compared."""
    def tiny_cache(over_decode, quick=False):  # the smallest benchmark JSON with a goal row
        return {"quick": quick, "images": 100, "files_in_raw_tree": 400, "workers": 2,
                "sides": {"cache_job": {"median_img_per_s": 100.0 * over_decode},
                          "bare_decode": {"median_img_per_s": 100.0}},
                "ratios": {"cache_job_vs_bare_decode": {"median": over_decode, "min": over_decode}}}

    runs = {"then": tiny_cache(1.0), "now_same": tiny_cache(1.1), "now_slower": tiny_cache(0.7),
            "now_quick": tiny_cache(0.5, quick=True)}
    for name, result in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "tiny_cache.json").write_text(json.dumps(result))
    summary = ROOT / "benchmarks" / "summary.py"
    subprocess.run([sys.executable, summary, tmp_path / "then"], check=True, capture_output=True)

    def compare(name):
        done = subprocess.run([sys.executable, summary, tmp_path / name, "--against", tmp_path / "then"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout, json.loads((tmp_path / name / "summary.json").read_text())["against"]

    out, same = compare("now_same")
    assert same["reproduced"] == 1 and same["pairs"][0]["change"] == 0.1 and "1 of 1 rows within 15%" in out
    out, slower = compare("now_slower")
    assert slower["reproduced"] == 0 and "moved -30%: Tiny cache job" in out, out
    assert "goal >= 0.8 met then, not now" in out
    out, quick = compare("now_quick")
    assert quick["pairs"] == [] and "0 of 0 rows" in out
    # no earlier summary there: the run's own table and summary.json still come out, then the error
    (tmp_path / "now_same" / "summary.json").unlink()
    done = subprocess.run([sys.executable, summary, tmp_path / "now_same", "--against", tmp_path / "none"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"cannot compare with {tmp_path / 'none'}: No such file" in done.stderr
    assert "Tiny cache job" in done.stdout and (tmp_path / "now_same" / "summary.json").exists()


def test_crop_epoch_runs_the_checkout_it_is_given(tmp_path):
    """bench_small_images.py --baseline times each checkout's data path by benchmarks/crop_epoch.py
    in a process of its own: the same tree twice gives the same batches, a copy of imgdag whose
    mirroring differs gives others (so the child runs the checkout named, not this tree)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_small_images
    import numpy as np

    from imgdag.arraycache_writer import write_images_cache

    pixels = np.random.default_rng(0).integers(0, 256, (200, 64, 64, 3), dtype=np.uint8)
    stem = tmp_path / "cache"
    write_images_cache(stem, 200, ((f"{i}.png", pixels[i], i % 10) for i in range(200)), "random images")
    other = tmp_path / "other"
    shutil.copytree(ROOT / "imgdag", other / "imgdag", ignore=shutil.ignore_patterns("__pycache__"))
    augment = other / "imgdag" / "augment.py"
    mirrored = "flip = torch.rand(n, 1, generator=generator) < 0.5"
    assert mirrored in augment.read_text()
    augment.write_text(augment.read_text().replace(mirrored, "flip = torch.rand(n, 1, generator=generator) < 0.0"))
    ours, theirs = set(), set()
    for _ in range(2):
        timed = bench_small_images.crop_epoch_in_child(ROOT, stem, 1, 200, ours)
        assert timed["seconds"] > 0
    bench_small_images.crop_epoch_in_child(other, stem, 1, 200, theirs)
    assert len(ours) == 1 and len(theirs) == 1 and ours != theirs


@pytest.mark.realdata
def test_the_benchmarks_read_data_held_out_from_them(tmp_path):
    """A reviewer's own data in place of the shared samples: IMGDAG_BENCH_JPEGS, a class-folder
    tree of JPEGs (found in its subfolders, named relative to it in a packed .lst), and
    bench_tiny_cache.py --raw, a Tiny ImageNet folder cached from as it is; each JSON and the
    summary name what was read."""
    sample = sorted(realdata_path("imagenet-sample").glob("*.JPEG"))[:5]
    tiny = realdata_path("tiny-imagenet-200")
    tree = tmp_path / "held-out"
    for i, jpeg in enumerate(sample):  # two class folders, names as ImageNet's train files
        wnid = jpeg.name.split("_")[0]
        (tree / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(jpeg, tree / f"class{i % 2}" / f"{wnid}_{i}.jpg")
    env = {**os.environ, "IMGDAG_BENCH_JPEGS": str(tree)}
    out = tmp_path / "out"
    runs = {"codec": [], "pack": ["--jobs", "resize", "pass_through_small"],
            "tiny_cache": ["--raw", str(tiny), "--split", "train"]}
    for name, options in runs.items():
        done = subprocess.run([sys.executable, ROOT / "benchmarks" / f"bench_{name}.py", "--quick", *options,
                               "--out", out / f"{name}.json"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    codec = json.loads((out / "codec.json").read_text())
    assert (codec["source"], codec["source_files"], codec["images"]) == (str(tree), 5, 5)
    pack = json.loads((out / "pack.json").read_text())
    assert (pack["source"], pack["source_files"]) == (str(tree), 5)
    if (ROOT / ".venv-mxnet").exists():  # im2rec packed the same subfolder paths
        assert pack["pass_through_small"]["rec_identical_to_im2rec"] is True
    cached = json.loads((out / "tiny_cache.json").read_text())
    trains = sorted(tiny.glob("train/*/images/*.JPEG"))
    assert cached["source"] == str(tiny.resolve()) and cached["images"] == len(trains) == 1000
    assert cached["files_in_raw_tree"] == sum(1 for p in tiny.rglob("*") if p.is_file())
    summary = subprocess.run([sys.executable, ROOT / "benchmarks" / "summary.py", out],
                             capture_output=True, text=True, timeout=60)
    assert f"data of codec: {tree} (5 files)" in summary.stdout, summary.stdout
    assert f"data of tiny_cache: {tiny.resolve()}" in summary.stdout
