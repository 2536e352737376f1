"""A job SIGKILLed at a named point leaves nothing a rerun takes as finished, and the plain
rerun ends with the same bytes (metrics, weights) as an uninterrupted run.

One uninterrupted MNIST-demo run (small: 2 epochs) is the reference; each kill test copies
only the reference's inputs of the killed step, kills the step with IMGDAG_FAULT
(imgdag/faults.py), checks that the step's final output is absent, reruns it as is and
compares. The rerun also removes the temporaries the killed process left.
"""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from e2e import ROOT, cli_env

TRAIN = {"model": "lenet5", "num_classes": 10, "epochs": 2, "batch_size": 64, "optimizer": "sgd",
         "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0001, "lr_schedule": "cosine", "seed": 0,
         "checkpoint_every": 1, "device": "cpu", "normalize": {"mean": [0.1307], "std": [0.3081]},
         "augment": {"crop_min": 24, "crop_max": 28, "max_degrees": 15}}
# step -> (command, outputs compared with the reference, the output whose presence means finished)
STEPS = {
    "demo": (["make_demo.py", "mnist", "demo"], ["demo/t10k-images-idx3-ubyte.gz", "demo/train-labels-idx1-ubyte.gz"],
             "demo/train-labels-idx1-ubyte.gz"),
    "pngs": (["mnist_to_pngs.py", "--raw", "demo", "--split", "train", "--out-dir", "images/train",
              "--lst", "lists/train.lst"], ["lists/train.lst", "images/train/000100_" ], "lists/train.lst"),
    "rec": (["make_rec.py", "lists/train.lst", "images", "--pass-through", "--rec", "rec/train.rec",
             "--idx", "rec/train.idx"], ["rec/train.rec", "rec/train.idx"], "rec/train.idx"),
    "cache": (["rec_to_array.py", "--rec", "rec/train.rec", "--idx", "rec/train.idx", "--out", "cache/train"],
              ["cache/train.images.npy", "cache/train.labels.npy"], "cache/train.labels.npy"),
    "train": (["train.py", "--train-cache", "cache/train", "--val-cache", "cache/test", "--params",
               json.dumps(TRAIN), "--model-out", "results/model.pt", "--log-csv", "results/log.csv",
               "--checkpoint-dir", "results/checkpoints", "--threads", "1"],
              ["results/model.pt", "results/checkpoints/epoch_001.pt", "results/checkpoints/epoch_002.pt"],
              "results/model.pt"),
    "evaluate": (["evaluate.py", "--model", "results/model.pt", "--test-cache", "cache/test", "--params",
                  json.dumps({"latency_batch": 8, "latency_repeats": 1}), "--metrics-out", "results/metrics.json",
                  "--confusion-out", "results/confusion.csv", "--per-class-out", "results/per_class.json",
                  "--latency-out", "results/latency.json", "--classified-out", "results/classified.csv",
                  "--threads", "1"],
                 ["results/confusion.csv", "results/per_class.json", "results/classified.csv"],
                 "results/metrics.json"),
    "predict": (["predict.py", "--model", "results/model.pt", "--images", "images/test", "--out",
                 "results/pred.csv", "--device", "cpu"], ["results/pred.csv"], "results/pred.csv"),
}
# the test split's files the later steps read, made by the reference run only
TEST_SPLIT = [["mnist_to_pngs.py", "--raw", "demo", "--split", "test", "--out-dir", "images/test",
               "--lst", "lists/test.lst"],
              ["make_rec.py", "lists/test.lst", "images", "--pass-through", "--rec", "rec/test.rec",
               "--idx", "rec/test.idx"],
              ["rec_to_array.py", "--rec", "rec/test.rec", "--idx", "rec/test.idx", "--out", "cache/test"]]
ORDER = list(STEPS)


def cli(cwd, args, fault=None) -> subprocess.CompletedProcess:
    extra = {"IMGDAG_FAULT": fault} if fault else {}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / args[0]), *args[1:]], cwd=cwd,
                          env={**cli_env(), **extra}, capture_output=True, text=True, timeout=600)


def output_files(work, name):
    """The files an output names (a name ending in `_` stands for the files starting with it)."""
    if name.endswith("_"):
        return sorted((work / name).parent.glob((work / name).name + "*"))
    return [work / name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    for step in ORDER[:ORDER.index("train")]:
        assert cli(work, STEPS[step][0]).returncode == 0, step
    for args in TEST_SPLIT:
        assert cli(work, args).returncode == 0, args
    for step in ORDER[ORDER.index("train"):]:
        done = cli(work, STEPS[step][0])
        assert done.returncode == 0, done.stderr
    return work


def temporaries(work):
    return list(work.rglob(".*.tmp-*"))


def metrics_without_latency(path):
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "latency"}


def log_without_seconds(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


# kill point (IMGDAG_FAULT) -> the step it kills
KILLS = {"demo": "demo", "png:300": "pngs", "pack:300": "rec", "cache:300": "cache",
         "train_batch:60": "train", "checkpoint:1": "train", "evaluate": "evaluate", "predict": "predict"}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(KILLS))
def test_kill_then_plain_rerun_matches_uninterrupted(reference, tmp_path, fault):
    step = KILLS[fault]
    command, compared, finished = STEPS[step]
    work = tmp_path / "work"
    shutil.copytree(reference, work)
    for later in ORDER[ORDER.index(step):]:  # the killed step and what follows it are not done yet
        for name in STEPS[later][1] + [STEPS[later][2]]:
            for file in output_files(work, name):
                file.unlink(missing_ok=True)
    if step == "train":
        shutil.rmtree(work / "results/checkpoints")
    if step == "pngs":
        shutil.rmtree(work / "images/train")

    killed = cli(work, command, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (work / finished).exists(), f"{finished} exists after a kill at {fault}"
    if fault.startswith(("png", "pack", "cache", "predict")):
        assert temporaries(work), "the kill left no temporary: the point is not inside a write"

    rerun = cli(work, command)
    assert rerun.returncode == 0, rerun.stderr
    assert temporaries(work) == [], "the rerun left the killed job's temporaries"
    for name in compared:
        ours, theirs = output_files(work, name), output_files(reference, name)
        assert ours and [p.name for p in ours] == [p.name for p in theirs]
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, theirs)), name
    if step == "train":
        assert log_without_seconds(work / "results/log.csv") == log_without_seconds(reference / "results/log.csv")
        if fault != "checkpoint:1":
            assert "resuming from" in rerun.stdout
    if step == "evaluate":
        assert (metrics_without_latency(work / "results/metrics.json")
                == metrics_without_latency(reference / "results/metrics.json"))


def test_second_trainer_on_the_same_run_is_refused(reference, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(reference / "cache", work / "cache")
    long_run = [json.dumps({**TRAIN, "epochs": 1000}) if a == json.dumps(TRAIN) else a
                for a in STEPS["train"][0][1:]]  # still training when the second one starts
    first = subprocess.Popen([sys.executable, str(ROOT / "scripts/train.py"), *long_run],
                             cwd=work, env={**cli_env(), "IMGDAG_FAULT": "never"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = work / "results/checkpoints/.lock"
        for _ in range(600):
            if lock.exists() and lock.read_text().startswith("pid"):
                break
            first.poll()
            assert first.returncode is None, first.stderr.read()
            time.sleep(0.1)
        second = cli(work, STEPS["train"][0])
        assert second.returncode == 1
        assert f"results/checkpoints: another job (pid {first.pid}) is writing this run" in second.stderr
    finally:
        first.kill()
        first.wait()
