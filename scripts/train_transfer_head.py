"""Train the transfer head on concatenated cached features with the imgdag engine: fit on train and
report validation log loss and accuracy, refit on train_valid, write the Kaggle submission."""
import hashlib
import json
import os
from pathlib import Path, PurePosixPath

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
import numpy as np
import torch

from imgdag.atomic import atomic_write_json
from imgdag.batches import TensorBatches
from imgdag.cli import json_object, parser, run
from imgdag.engine import fit, select_device, write_history
from imgdag.errors import DataError
from imgdag.faults import lock_run
from imgdag.formats.class_list import read_class_list
from imgdag.formats.lst import read_lst
from imgdag.threads import add_cpu_isa_argument, use_threads
from imgdag.transfer import (multiclass_log_loss, read_features_file, read_submission_columns,
                             transfer_head, write_kaggle_submission)


def image_id(path: str) -> str:
    """The Kaggle id of an image: its file name without the suffix."""
    return PurePosixPath(path).stem


def load_feature_sets(paths) -> tuple[list[str], torch.Tensor, dict, list[str]]:
    """(image paths, features of all files side by side (N, D), per-file info, cache keys); every
    file must hold the same images in the same order."""
    ids, blocks, info, keys = None, [], {}, []
    for path in paths:
        saved = read_features_file(path)
        if ids is not None and saved["ids"] != ids:
            raise DataError(path, f"holds other images than {paths[0]}")
        ids = saved["ids"]
        blocks.append(saved["features"].float())
        keys.append(saved["key"])
        if Path(path).stem in info:
            raise DataError(path, "given twice")
        info[Path(path).stem] = {"backbone": saved["backbone"], "size": saved["size"],
                                 "features": int(saved["features"].shape[1]),
                                 "pretrained": saved["weights_sha256"] != "random",
                                 "weights_sha256": saved["weights_sha256"]}
    return ids, torch.cat(blocks, dim=1), info, keys


def select(lst_path, rows: dict, features: torch.Tensor):
    """(features, labels, ids) of the images a .lst lists, found by Kaggle id."""
    entries = read_lst(lst_path)
    missing = [e.path for e in entries if image_id(e.path) not in rows]
    if missing:
        raise DataError(lst_path, f"{len(missing)} images have no features, e.g. {missing[0]}")
    index = [rows[image_id(e.path)] for e in entries]
    labels = torch.tensor([int(e.labels[0]) for e in entries], dtype=torch.long)
    return features[index], labels, [image_id(e.path) for e in entries]


def standardizer(x: torch.Tensor, widths: list[int]):
    """Centre each feature column and divide each backbone's block of `widths` columns by its
    mean column std, all over the rows of `x` (the training rows): backbones whose features
    differ in scale by orders of magnitude (random ones do) weigh alike in the head."""
    mean = x.mean(0)
    if len(x) < 2:
        return lambda features: features - mean
    std = torch.cat([block.std(0).mean().clamp_min(1e-12).expand(width)
                     for width, block in zip(widths, x.split(widths, dim=1))])
    return lambda features: (features - mean) / std


@torch.no_grad()
def predict_proba(head, features: torch.Tensor, device, batch_size: int = 4096) -> np.ndarray:
    """Softmax probabilities (float64, rows sum to 1) of the head for each feature row."""
    head.eval()
    out = [head(features[i:i + batch_size].to(device)).double().softmax(1).cpu()
           for i in range(0, len(features), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head[-1].out_features))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--features", required=True, nargs="+",
                   help="features files (extract_features.py), concatenated in this order")
    for split in ("train", "valid", "train-valid", "test"):
        p.add_argument(f"--{split}", required=True, help=f"{split}.lst of the class folders")
    p.add_argument("--classes", required=True, help="classes.txt: the label order")
    p.add_argument("--sample-submission", required=True,
                   help="Kaggle sample_submission.csv: the submission's column order")
    p.add_argument("--params", required=True, type=json_object,
                   help="the recipe's head section of params.yaml, as a JSON object")
    p.add_argument("--metrics-out", required=True,
                   help="headline metrics JSON to write (validation log loss, accuracy, images)")
    p.add_argument("--run-info-out", required=True,
                   help="JSON to write with the rest: image counts, classes, feature sizes, backbones")
    p.add_argument("--log-csv", required=True, help="per-epoch log of the fit on train")
    p.add_argument("--curves-png", help="PNG of the loss and accuracy curves of that fit")
    p.add_argument("--retrain-log-csv", required=True,
                   help="per-epoch log of the refit on train_valid (its val rows are seen data)")
    p.add_argument("--submission-out", required=True, help="submission CSV to write")
    p.add_argument("--checkpoint-dir", required=True, help="where checkpoints go and resume from")
    p.add_argument("--threads", type=int, default=0, help="CPU cores in all (0: every core)")
    add_cpu_isa_argument(p)
    args = p.parse_args()
    lock_run(args.checkpoint_dir)  # one trainer per run: held until the process ends
    params = args.params
    use_threads(args.threads or os.cpu_count())
    device = select_device(params.get("device", "auto"))
    ids, features, info, keys = load_feature_sets(args.features)
    rows = {image_id(path): i for i, path in enumerate(ids)}
    if len(rows) != len(ids):
        raise DataError(args.features[0], "two images share a Kaggle id (file name)")
    classes = read_class_list(args.classes)
    columns = read_submission_columns(args.sample_submission)
    sets = {name: select(path, rows, features) for name, path in
            (("train", args.train), ("valid", args.valid), ("train_valid", args.train_valid),
             ("test", args.test))}
    for name in ("train", "valid"):
        if len(sets[name][1]) == 0:
            raise DataError(getattr(args, name), "no images")
    valid_x, valid_y, _ = sets["valid"]

    def train_head(split: str, log_csv):
        """Fit a fresh head on `split`; return its probabilities as a function of features, and
        the per-epoch history."""
        x, y, split_ids = sets[split]
        widths = [backbone["features"] for backbone in info.values()]
        scale = standardizer(x, widths) if params.get("standardize") else (lambda f: f)
        # a checkpoint resumes only for the same params and the same features and labels
        data = hashlib.sha256(json.dumps([keys, split_ids, y.tolist()]).encode()).hexdigest()
        torch.manual_seed(params["seed"])
        head = transfer_head(features.shape[1], len(classes), params["hidden"],
                             params["dropout"]).to(device)
        batches = TensorBatches(scale(x), y, params["batch_size"], device, shuffle=True,
                                seed=params["seed"])
        val = TensorBatches(scale(valid_x), valid_y, params["batch_size"], device)
        print(f"training the head on {len(y)} {split} images, {features.shape[1]} features")
        history = fit(head, batches, val, {**params, "data": data}, device,
                      Path(args.checkpoint_dir) / split, log_csv)
        return (lambda f: predict_proba(head, scale(f), device)), history

    predict, history = train_head("train", args.log_csv)
    if args.curves_png:  # drawn once here, not after every epoch
        write_history(history, args.log_csv, args.curves_png)
    probs = predict(valid_x)
    val_log_loss = multiclass_log_loss(valid_y.numpy(), probs)
    val_accuracy = float((probs.argmax(1) == valid_y.numpy()).mean())
    final, _ = train_head("train_valid", args.retrain_log_csv)
    test_x, _, test_ids = sets["test"]
    write_kaggle_submission(args.submission_out, test_ids, final(test_x), classes, columns)
    metrics = {"val_log_loss": round(val_log_loss, 6), "val_accuracy": round(val_accuracy, 6),
               "val_images": len(valid_y)}
    run_info = {"train_images": len(sets["train"][1]), "test_images": len(test_ids),
                "classes": len(classes), "feature_dims": int(features.shape[1]), "backbones": info}
    atomic_write_json(args.metrics_out, metrics)
    atomic_write_json(args.run_info_out, run_info)
    print(f"validation log loss {val_log_loss:.4f}, accuracy {val_accuracy:.4f} on "
          f"{len(valid_y)} images; submission of {len(test_ids)} test images in "
          f"{args.submission_out}")


if __name__ == "__main__":
    run(main)
