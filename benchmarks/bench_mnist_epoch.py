"""One LeNet-5 training epoch: imgdag's fast path against a per-image PNG + Pillow +
torchvision ImageFolder/DataLoader loop, on the same images, in one run. Writes JSON.

Both sides train the same model with the same optimizer, batch size and augmentation
(random crop of 24-28 px resized back to 28, rotation up to +-15 degrees); only the data
path differs: uint8 array + whole-batch augmentation versus per-image decode and transforms.
The two sides are interleaved (A B A B ...), --repeats rounds. Writes benchmarks/out/mnist_epoch.json.
`--quick`: 640 digits, one repeat (a smoke test, not timed).
"""
import tempfile
import time
from functools import partial
from pathlib import Path

from timing import REALDATA, context, interleaved, ratio, summary, write_result  # first: this tree's imgdag

import imgdag.threads  # noqa: F401  before torch: idle OpenMP threads sleep
import torch
from PIL import Image
from torch import nn
from torchvision import datasets, transforms

from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches
from imgdag.cli import parser, run
from imgdag.demo.mnist import make_demo_mnist
from imgdag.layouts.mnist_idx import read_split
from imgdag.models.lenet import lenet5
from imgdag.threads import use_threads


MEAN, STD = 0.1307, 0.3081


def train_epoch(batches) -> tuple[float, int]:
    """Seconds and images for one epoch of LeNet-5 SGD over `batches`."""
    torch.manual_seed(0)
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    start, seen = time.perf_counter(), 0
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
        seen += len(y)
    return time.perf_counter() - start, seen


def image_folder_loader(images, labels, root: Path, batch_size: int, workers: int):
    """Write the images as class-folder PNGs and build the ImageFolder DataLoader baseline."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:06d}.png")
    transform = transforms.Compose([
        transforms.Grayscale(),
        transforms.RandomResizedCrop(28, scale=((24 / 28) ** 2, 1.0), ratio=(1.0, 1.0)),
        transforms.RandomRotation(15),
        transforms.ToTensor(),
        transforms.Normalize([MEAN], [STD]),
    ])
    dataset = datasets.ImageFolder(root, transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                       num_workers=workers, persistent_workers=False)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", help="MNIST idx folder (default: ../shared/realdata/mnist's 10,000 "
                                 "real test digits if present, else the demo)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads for both")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke test: 640 digits, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/mnist_epoch.json)")
    args = p.parse_args()
    if args.quick:
        args.repeats = 1
    use_threads(args.threads)
    result = {**context(), "quick": args.quick, "batch_size": args.batch_size, "threads": args.threads,
              "baseline_workers": args.workers, "repeats": args.repeats, "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = Path(args.raw) if args.raw else REALDATA / "mnist"
        split = "test"
        if not (raw / "t10k-images-idx3-ubyte.gz").exists():
            make_demo_mnist(tmp / "demo")
            raw, split = tmp / "demo", "train"
        images, labels = read_split(raw, split)
        if args.quick:
            images, labels = images[:640], labels[:640]
        loader = image_folder_loader(images, labels, tmp / "folders", args.batch_size,
                                     args.workers)
        augment = partial(random_crop_rotate, crop_min=24, crop_max=28, max_degrees=15)
        fast = ArrayBatches(images[..., None], labels, args.batch_size, torch.device("cpu"),
                            [MEAN], [STD], shuffle=True, augment=augment)

        def timed(batches):
            seconds, seen = train_epoch(batches)
            assert seen == len(labels), (seen, len(labels))
            return {"seconds": seconds}

        runs = interleaved({"imgdag": lambda: timed(fast.epoch(0)), "imagefolder": lambda: timed(loader)},
                           args.repeats)
    result.update({"images": len(labels), "source": str(raw)})
    result.update({name: summary(r, len(labels), "img") for name, r in runs.items()})
    result["ratio_imagefolder_s_over_ours_s"] = ratio(result["imgdag"], result["imagefolder"])
    write_result("mnist_epoch", result, args.out)


if __name__ == "__main__":
    run(main)
