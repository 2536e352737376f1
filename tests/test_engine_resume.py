"""The engine's checkpoint contract on feature batches: a rerun of a finished fit trains nothing
and writes the per-epoch log again (as after `dvc repro` deleted the stage's outputs)."""
import csv
import math

import pytest
import torch

from imgdag.batches import TensorBatches
from imgdag.engine import fit, make_scheduler
from imgdag.seeds import epoch_seed
from imgdag.transfer import transfer_head

PARAMS = {"epochs": 3, "batch_size": 4, "optimizer": "adam", "lr": 0.01, "seed": 0,
          "checkpoint_every": 1}


def test_rerun_of_a_finished_fit_rewrites_its_log_and_keeps_the_weights(tmp_path):
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    batches = TensorBatches(x, y, 4, torch.device("cpu"), shuffle=True)
    head = transfer_head(5, 3, hidden=8)
    log = tmp_path / "log.csv"
    history = fit(head, batches, batches, PARAMS, torch.device("cpu"), tmp_path / "ck", log)
    trained = {k: v.clone() for k, v in head.state_dict().items()}
    log.unlink()
    rerun = transfer_head(5, 3, hidden=8)
    timeless = [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    assert fit(rerun, batches, batches, PARAMS, torch.device("cpu"), tmp_path / "ck", log) == timeless
    with open(log) as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3]
    assert all(torch.equal(rerun.state_dict()[k], v) for k, v in trained.items())


def test_the_log_holds_no_wall_clock_time_and_two_runs_write_the_same_bytes(tmp_path):
    """The per-epoch log is kept in git: a rerun with the same results leaves it as it was; the
    seconds go to the times CSV."""
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    logs = []
    for run in ("a", "b"):
        batches = TensorBatches(x, y, 4, torch.device("cpu"), shuffle=True)
        torch.manual_seed(0)
        fit(transfer_head(5, 3, hidden=8), batches, batches, PARAMS, torch.device("cpu"),
            tmp_path / run / "ck", tmp_path / run / "log.csv", times_csv=tmp_path / run / "times.csv")
        logs.append((tmp_path / run / "log.csv").read_bytes())
    assert logs[0] == logs[1]
    assert b"seconds" not in logs[0]
    with open(tmp_path / "a" / "times.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and all(float(r["seconds"]) > 0 for r in rows)


def lrs(params, steps_per_epoch):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = make_scheduler(optimizer, params, steps_per_epoch)
    seen = []
    for _ in range(params["epochs"] * steps_per_epoch):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


# lr_schedule params, and the rate (lr 1) of step k of `total` at 4 steps an epoch, from the
# formulas in torch's docs (closed forms; the schedulers compute most steps from the last rate)
SCHEDULES = {
    "cosine": ({"lr_schedule": "cosine"}, lambda k, total: (1 + math.cos(math.pi * k / total)) / 2),
    "warmup_cosine": ({"lr_schedule": "warmup_cosine", "warmup_epochs": 1},
                      lambda k, total: 1 / 4 + (1 - 1 / 4) * k / 4 if k < 4
                      else (1 + math.cos(math.pi * (k - 4) / (total - 4))) / 2),
    "step": ({"lr_schedule": "step", "step_epochs": 2, "gamma": 0.1}, lambda k, total: 0.1 ** (k // 8)),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_each_schedule_gives_the_rates_of_its_formula(schedule):
    extra, rate = SCHEDULES[schedule]
    assert lrs({**extra, "epochs": 5}, 4) == pytest.approx([rate(k, 20) for k in range(20)],
                                                          rel=1e-12, abs=1e-15)


def test_warmup_cosine_of_one_epoch_is_the_warm_up_alone():
    assert lrs({"lr_schedule": "warmup_cosine", "epochs": 1}, 4) == [0.25, 0.4375, 0.625, 0.8125]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_fit_resumed_twice_writes_the_bytes_of_an_unbroken_one(tmp_path, capsys, schedule):
    """The schedulers' state goes into the checkpoint: an interrupted run steps on from the rate
    it stopped at (rates computed from the last one included)."""
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    batches = TensorBatches(x, y, 4, torch.device("cpu"), shuffle=True)  # 3 steps an epoch
    params = {**PARAMS, **SCHEDULES[schedule][0], "epochs": 5, "step_epochs": 1}
    for run, stops in (("whole", [None]), ("resumed", [1, 2, None])):
        for stop_after in stops:
            torch.manual_seed(0)
            fit(transfer_head(5, 3, hidden=8), batches, batches, params, torch.device("cpu"),
                tmp_path / run / "ck", tmp_path / run / "log.csv", stop_after=stop_after)
    assert capsys.readouterr().out.count("resuming from") == 2
    for name in ("ck/last.pt", "log.csv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_checkpoints_keep_the_newest_and_drop_other_params(tmp_path):
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    batches = TensorBatches(x, y, 4, torch.device("cpu"), shuffle=True)
    params = {**PARAMS, "epochs": 4, "keep_checkpoints": 2, "lr_schedule": "cosine"}
    log = tmp_path / "log.csv"
    fit(transfer_head(5, 3, hidden=8), batches, batches, params, torch.device("cpu"),
        tmp_path / "ck", log)
    assert sorted(p.name for p in (tmp_path / "ck").glob("*.pt")) == [
        "epoch_003.pt", "epoch_004.pt", "last.pt"]
    with open(log) as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f)]
    # the rate each epoch trained with: the first epoch starts at the configured lr
    assert rates[0] == params["lr"] and rates == sorted(rates, reverse=True)
    other = {**params, "lr": 0.02, "epochs": 1}
    fit(transfer_head(5, 3, hidden=8), batches, batches, other, torch.device("cpu"),
        tmp_path / "ck", log)
    assert sorted(p.name for p in (tmp_path / "ck").glob("*.pt")) == ["epoch_001.pt", "last.pt"]


def test_epoch_seeds_are_those_the_committed_results_were_made_with():
    """Each epoch's draws (batch order, augmentation, the engine's dropout) come from
    seed * 1_000_003 + epoch: another formula would change every committed result."""
    assert [epoch_seed(s, e) for s, e in ((0, 0), (0, 5), (3, 2))] == [0, 5, 3_000_011]
    batches = TensorBatches(torch.zeros(10, 1), torch.arange(10), 10, torch.device("cpu"), shuffle=True, seed=3)
    _, order = next(iter(batches.epoch(2)))
    assert torch.equal(order, torch.randperm(10, generator=torch.Generator().manual_seed(3_000_011)))


def test_a_long_run_prints_about_ten_epoch_lines_and_logs_every_epoch(tmp_path, capsys):
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    batches = TensorBatches(x, y, 4, torch.device("cpu"), shuffle=True)
    fit(transfer_head(5, 3, hidden=8), batches, batches, {**PARAMS, "epochs": 60, "checkpoint_every": 60},
        torch.device("cpu"), tmp_path / "ck", tmp_path / "log.csv")
    shown = [int(line.split()[1].split("/")[0]) for line in capsys.readouterr().out.splitlines()
             if line.startswith("epoch ")]
    assert shown == [1, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60]
    with open(tmp_path / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 60
    fit(transfer_head(5, 3, hidden=8), batches, batches, PARAMS, torch.device("cpu"),
        tmp_path / "short", tmp_path / "short.csv")  # 3 epochs: each shown
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]) == 3
