"""A job SIGKILLed at a named point leaves nothing a rerun takes as finished, and the plain
rerun ends with the same bytes (metrics, weights) as an uninterrupted run.

One uninterrupted MNIST-demo run (small: 2 epochs) is the reference; each kill test copies
only the reference's inputs of the killed step, kills the step with IMGDAG_FAULT
(imgdag/faults.py), checks that the step's final output is absent, reruns it as is and
compares. The rerun also removes the temporaries the killed process left.

The reference trains on 1 core with compute.torch_threads' 2 torch threads; training on 2 cores,
and under Snakemake and DVC in a copy of the repository, must give the same bytes. There, the
Snakemake (or `dvc repro` and its Snakemake) process is killed while its trainer still runs:
the trainer must stop, and the README's one rerun command must finish the run.
"""
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from e2e import ROOT, cli_env, copy_repo, sh
from imgdag.faults import snakemake_ancestor

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
               json.dumps(TRAIN, sort_keys=True), "--model-out", "results/model.pt", "--log-csv",
               "results/log.csv", "--checkpoint-dir", "results/checkpoints", "--threads", "1",
               "--torch-threads", "2"],
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
    long_run = [json.dumps({**TRAIN, "epochs": 1000}) if a == json.dumps(TRAIN, sort_keys=True) else a
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


def same_training_bytes(results, reference):
    """model.pt and checkpoint bytes, and the log, of a training into `results` as the reference's."""
    for name in ("model.pt", "checkpoints/epoch_001.pt", "checkpoints/epoch_002.pt"):
        assert (results / name).read_bytes() == (reference / "results" / name).read_bytes(), name
    log = results / "train_log.csv" if (results / "train_log.csv").exists() else results / "log.csv"
    assert log_without_seconds(log) == log_without_seconds(reference / "results/log.csv")


@pytest.mark.slow
def test_training_gives_the_same_bytes_on_any_core_count(reference, tmp_path):
    """An epoch on 2 cores, resumed on 1 core: the bytes of the reference's run on 1 core."""
    work = tmp_path / "work"
    shutil.copytree(reference / "cache", work / "cache")
    command = STEPS["train"][0]
    two_cores = command[:command.index("--threads") + 1] + ["2"] + command[command.index("--threads") + 2:]
    first = cli(work, [*two_cores, "--stop-after", "1"])
    assert first.returncode == 0, first.stderr
    assert "oversubscribed" not in first.stdout
    resumed = cli(work, command)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from results/checkpoints/last.pt after epoch 1" in resumed.stdout
    assert "2 torch threads (compute.torch_threads) and 0 loader workers on 1 core(s): oversubscribed" \
        in resumed.stdout
    same_training_bytes(work / "results", reference)


OUT = "results/mnist_lenet5"
# the reference's files -> where the MNIST recipe keeps them
SEEDED = {"demo": "data/demo/mnist", "images": "data/mnist/images", "lists/train.lst": "data/mnist/train.lst",
          "lists/test.lst": "data/mnist/test.lst", "rec/train.rec": "data/mnist/train.rec",
          "rec/train.idx": "data/mnist/train.idx", "rec/test.rec": "data/mnist/test.rec",
          "rec/test.idx": "data/mnist/test.idx", "cache": "data/mnist/cache"}


@pytest.fixture(scope="module")
def repo(reference, tmp_path_factory):
    """A copy of the repository whose MNIST recipe trains as the reference, with the reference's
    data in place (mtimes kept): Snakemake has only the training left to do."""
    ws = copy_repo(tmp_path_factory.mktemp("repo") / "repo")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["recipes"]["mnist_lenet5"]["train"] = TRAIN
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "commit", "-qam", "the reference's training"], ws)
    for source, target in SEEDED.items():
        (ws / target).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (reference / source).is_dir() else shutil.copy2)(reference / source, ws / target)
    return ws


def start_until_first_checkpoint(ws, command):
    """Start `command` in ws with the trainer stuck (alive) after its first checkpoint; return the
    process and the trainer's pid."""
    with open(ws.parent / "run.out", "w") as out:
        proc = subprocess.Popen(command, cwd=ws, env={**cli_env(), "IMGDAG_FAULT": "checkpoint:1:hang"},
                                stdout=out, stderr=subprocess.STDOUT)
    for _ in range(3000):
        if (ws / OUT / "checkpoints/epoch_001.pt").exists():
            return proc, int((ws / OUT / "checkpoints/.lock").read_text().split()[1])
        assert proc.poll() is None, (ws.parent / "run.out").read_text()
        time.sleep(0.1)
    raise AssertionError("no first checkpoint after 300 s")


def ended_within(pid: int, seconds: float) -> bool:
    """Whether process pid is gone (or a zombie) within `seconds`."""
    for _ in range(int(seconds * 10)):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_a_job_and_its_children_end_with_their_snakemake(tmp_path):
    """A stand-in `snakemake` (a script of that name) runs a job with a child process through
    `bash -c '... | tee log'`, as a rule does; once it is killed, job and child end."""
    job = ("import os, subprocess, time; from imgdag.cli import run; "
           "run(lambda: (print(os.getpid(), subprocess.Popen(['sleep', '60']).pid, flush=True), time.sleep(60)))")
    fake = tmp_path / "snakemake"
    fake.write_text(f"#!/bin/bash\nbash -c {shlex.quote(f'{sys.executable} -c {shlex.quote(job)} 2>&1 | tee log')}\n")
    fake.chmod(0o755)
    snakemake = subprocess.Popen([str(fake)], cwd=tmp_path, env={**cli_env(), "PYTHONPATH": str(ROOT)},
                                 stdout=subprocess.DEVNULL)
    pids = []
    try:
        for _ in range(300):
            pids = (tmp_path / "log").read_text().split() if (tmp_path / "log").exists() else []
            if pids:
                break
            time.sleep(0.1)
        assert len(pids) == 2, "the job did not start"
        snakemake.kill()
        snakemake.wait()
        assert all(ended_within(int(pid), 5) for pid in pids), "the job or its child outlived snakemake"
        for _ in range(50):  # tee writes what the job said last
            if "the Snakemake process that started this job" in (tmp_path / "log").read_text():
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the job did not say why it stopped")
    finally:
        snakemake.kill()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def fake_runner(folder, name: str, command: str) -> Path:
    """A stand-in for `snakemake` or `dvc` (a script of that name) that runs `command` with bash."""
    fake = folder / name
    fake.write_text(f"#!/bin/bash\nbash -c {shlex.quote(command)}\n")
    fake.chmod(0o755)
    return fake


def job_of(runner: subprocess.Popen, script: str, until: str = "", seconds: float = 60) -> int:
    """The pid of the process below `runner` that runs `script`, once its memory map holds
    `until` (a library being loaded)."""
    for _ in range(int(seconds * 10)):
        for proc in psutil.Process(runner.pid).children(recursive=True):
            try:
                if script in " ".join(proc.cmdline()) and until in Path(f"/proc/{proc.pid}/maps").read_text():
                    return proc.pid
            except (psutil.NoSuchProcess, OSError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"no {script} loading {until!r} below the runner after {seconds} s")


def test_a_job_still_loading_torch_ends_with_its_snakemake(tmp_path):
    """A real kill while the job is still importing torch (as train.py, before its main code runs)."""
    fake = fake_runner(tmp_path, "snakemake", f"{sys.executable} {ROOT}/scripts/train.py --help > log 2>&1")
    snakemake = subprocess.Popen([str(fake)], cwd=tmp_path, env={**cli_env(), "PYTHONPATH": str(ROOT)})
    try:
        job = job_of(snakemake, "train.py", until="libtorch")
        os.kill(snakemake.pid, signal.SIGKILL)
        assert ended_within(job, 2), "the job outlived its Snakemake by 2 s"
        assert "the Snakemake process that started this job" in (tmp_path / "log").read_text()
        assert "usage:" not in (tmp_path / "log").read_text()
    finally:
        snakemake.kill()
        snakemake.wait()


@pytest.mark.slow
def test_killed_snakemake_stops_its_trainer_and_one_command_finishes(reference, repo):
    snakemake, trainer = start_until_first_checkpoint(repo, ["snakemake", "--cores", "2", f"{OUT}/model.pt"])
    try:
        assert snakemake_ancestor(trainer) == snakemake.pid
        snakemake.kill()  # not waited for: a zombie is gone too
        assert ended_within(trainer, 5), "the trainer outlived its Snakemake process"
    finally:
        snakemake.kill()
        snakemake.wait()
    assert not (repo / OUT / "model.pt").exists()
    sh(["bash", "-c", f"python scripts/unlock.py && snakemake --cores all {OUT}/model.pt"], repo)  # README
    assert "resuming from" in (repo / "logs/mnist_train.log").read_text()
    same_training_bytes(repo / OUT, reference)


@pytest.mark.slow
def test_killed_dvc_repro_finishes_with_one_command(reference, repo):
    shutil.rmtree(repo / OUT, ignore_errors=True)
    # --single-item: the stages before training, made by the reference, are not DVC's to check
    dvc, trainer = start_until_first_checkpoint(repo, ["dvc", "repro", "--single-item", "mnist_train"])
    try:
        snakemake = snakemake_ancestor(trainer)
        assert snakemake is not None and snakemake != dvc.pid
        os.kill(dvc.pid, signal.SIGKILL)
        os.kill(snakemake, signal.SIGKILL)
        assert ended_within(trainer, 5), "the trainer outlived its Snakemake process"
    finally:
        dvc.kill()
        dvc.wait()
    assert list((repo / ".snakemake/locks").iterdir()), "no stale lock: the test tests nothing"
    repro = sh(["bash", "-c", "python scripts/unlock.py && dvc repro --single-item mnist_train"], repo)  # README
    assert "Running stage 'mnist_train'" in repro.stdout
    assert "resuming from" in (repo / "logs/mnist_train.log").read_text()
    same_training_bytes(repo / OUT, reference)


@pytest.mark.slow
def test_killing_only_dvc_ends_its_stage(reference, repo):
    """dvc alone SIGKILLed: the trainer ends (its watch sees dvc gone), and with its only job
    failed the stage's Snakemake ends too, releasing its lock."""
    shutil.rmtree(repo / OUT, ignore_errors=True)
    dvc, trainer = start_until_first_checkpoint(repo, ["dvc", "repro", "--single-item", "mnist_train"])
    snakemake = snakemake_ancestor(trainer)
    left = [psutil.Process(pid) for pid in (snakemake, trainer) if pid]  # taken now: psutil spots a reused pid
    try:
        assert snakemake is not None and snakemake != dvc.pid
        os.kill(dvc.pid, signal.SIGKILL)
        assert ended_within(trainer, 2), "the trainer outlived dvc by 2 s"
        assert ended_within(snakemake, 15), "the stage's Snakemake outlived dvc by 15 s"
    finally:
        dvc.kill()
        dvc.wait()
        for proc in left:  # alive only when the test fails
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
    assert "the dvc process above it" in (repo / "logs/mnist_train.log").read_text()
    assert not list((repo / ".snakemake/locks").glob("*")), "the stage's Snakemake left its lock"


def unlock(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/unlock.py")], cwd=folder,
                          env={**cli_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)


def test_unlock_refuses_while_a_snakemake_works_in_the_folder_and_clears_a_dead_ones_lock(tmp_path):
    (tmp_path / "Snakefile").write_text('rule a:\n    output: "a"\n    shell: "touch {output}"\n')
    stale = tmp_path / ".snakemake/locks/0.output.lock"
    stale.parent.mkdir(parents=True)
    stale.write_text(str(tmp_path / "a"))
    fake = tmp_path / "snakemake"  # a live stand-in working in the folder, with no child process
    fake.write_text("#!/bin/bash\nread -t 60 line\n")
    fake.chmod(0o755)
    live = subprocess.Popen([str(fake)], cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        refused = unlock(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.strip() == (f"error: {tmp_path}: Snakemake is running here (pid {live.pid}): its lock is "
                                      "live; wait for it or stop it, then rerun")
    assert stale.exists()
    cleared = unlock(tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert not stale.exists()
