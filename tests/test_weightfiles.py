"""Weight, checkpoint and features files: refused or broken ones are one line naming the file and
what to do, nothing in them runs, and published weights are checked against their hash."""
import shutil

import pytest
import torch
from e2e import script

from imgdag.batches import TensorBatches
from imgdag.engine import fit
from imgdag.errors import DataError
from imgdag.transfer import transfer_head
from imgdag.weightfiles import check_weights, file_sha256, load_torch


class Payload:
    """Unpickled, runs `touch <marker>`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch '{self.marker}'",)


def test_a_refused_checkpoint_is_one_line_that_says_delete_it(tmp_path):
    marker = tmp_path / "RAN"
    (tmp_path / "ck").mkdir()
    torch.save({"model": Payload(marker)}, tmp_path / "ck/last.pt")
    batches = TensorBatches(torch.randn(4, 5), torch.arange(4) % 3, 4, torch.device("cpu"))
    with pytest.raises(DataError) as refused:
        fit(transfer_head(5, 3, hidden=8), batches, batches, {"epochs": 1, "batch_size": 4, "optimizer": "adam", "lr": 0.01},
            torch.device("cpu"), tmp_path / "ck", tmp_path / "log.csv")
    message = str(refused.value)
    assert message == (f"{tmp_path / 'ck/last.pt'}: not a file of tensors and plain containers"
                       " (torch's weights-only loader refused it unread); a checkpoint of an earlier run: delete it to retrain from the start")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a zip", b"\x80\x02junk"])
def test_a_broken_file_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(DataError) as broken:
        load_torch(path, "delete it")
    message = str(broken.value)
    assert message.startswith(f"{path}: ") and message.endswith("; delete it") and "\n" not in message
    assert "weights_only" not in message


def test_an_empty_features_file_stops_the_head_with_one_line(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"")
    done = script("train_transfer_head.py", "--features", tmp_path / "a.pt", "--train", "x.lst",
                  "--valid", "x.lst", "--train-valid", "x.lst", "--test", "x.lst", "--classes", "c.txt",
                  "--sample-submission", "s.csv", "--params", "{}", "--metrics-out", tmp_path / "m.json",
                  "--run-info-out", tmp_path / "r.json", "--log-csv", tmp_path / "log.csv",
                  "--retrain-log-csv", tmp_path / "r.csv", "--submission-out", tmp_path / "sub.csv",
                  "--checkpoint-dir", tmp_path / "ck", ok=False)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'a.pt'}: "), done.stderr
    assert lines[0].endswith("delete it to extract the features again"), done.stderr


def test_torchvision_names_are_checked_against_their_published_hash_prefix(tmp_path):
    plain = tmp_path / "resnet18.pth"
    torch.save({"w": torch.zeros(2)}, plain)
    sha256 = file_sha256(plain)
    assert check_weights(plain) == {"sha256": sha256, "published": None}  # unknown: reported
    published = tmp_path / f"resnet18-{sha256[:8]}.pth"
    shutil.copyfile(plain, published)
    assert check_weights(published) == {"sha256": sha256,
                                         "published": f"torchvision file name ({sha256[:8]})"}
    wrong = "0" * 8 if not sha256.startswith("0" * 8) else "1" * 8
    altered = tmp_path / f"resnet18-{wrong}.pth"
    shutil.copyfile(plain, altered)
    with pytest.raises(DataError, match=rf"resnet18-{wrong}\.pth: sha256 {sha256[:12]}\.\.\. does not "
                                        rf"start with {wrong}.*fetch it again"):
        check_weights(altered)
