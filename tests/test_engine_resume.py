"""The engine's checkpoint contract on feature batches: a rerun of a finished fit trains nothing
and writes the per-epoch log again (as after `dvc repro` deleted the stage's outputs)."""
import csv

import torch

from imgdag.batches import TensorBatches
from imgdag.engine import fit
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
