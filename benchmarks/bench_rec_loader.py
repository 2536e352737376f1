"""Reading a .rec for training: our loader against MXNet 1.9.1's and NVIDIA DALI's, on real
ImageNet JPEGs.

Two .rec files of the real ImageNet sample JPEGs (or those under IMGDAG_BENCH_JPEGS, timing.py)
repeated: "full" (pass-through, the records hold the original JPEGs) and "256" (resized so the
shorter side is 256, quality 95, as im2rec --resize 256 packs ImageNet). Every side reads the
same file:
- loader: random-resized crops 224 (area 0.08-1, aspect 3/4-4/3) + mirror, normalised to float
  CHW, batch 64, `--workers` decode workers, epoch 1 (the pool starting) and epoch 2 (a warm
  pool and page cache) timed apart, each epoch every record once:
  ours: imgdag.imagedata.ImageBatches over RecordImages (`--workers` decoding threads that
  write normalised crops straight into the batch; one torch thread);
  mxnet: mx.io.ImageRecordIter(random_resized_crop, rand_mirror, mean/std,
  preprocess_threads=workers);
  dali: DALI's CPU pipeline (device_id=None) readers.mxnet(random_shuffle) ->
  decoders.image_random_crop -> resize 224x224 -> crop_mirror_normalize(coin-flip mirror),
  num_threads=workers, through its PyTorch iterator (last_batch_policy PARTIAL, sized by the
  reader);
  decode_limit: the ceiling for a loader built on libjpeg-turbo: every record read and decoded
  whole (the loader's fast IDCT, no crop, resize or normalisation) by `--workers` threads;
  interleaved per repeat: full ours, mxnet, dali, decode_limit, then the same on 256;
- decode: every full-size record read and decoded to RGB in one thread: RecordReader +
  imgdag.codec against MXIndexedRecordIO + mx.recordio.unpack_img.
Each side is timed inside its process after imports (MXNet in .venv-mxnet, DALI in a process
of this interpreter, as a training script would start it); a side whose package is absent is
left out with the reason in the JSON. Writes benchmarks/out/rec_loader.json: per record size
and epoch each side's median and min, the load average, and ours over each peer in images/s
(> 1: ours faster). `--quick`: one batch of records, one repeat (a smoke test, not timed).
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imgdag.threads  # noqa: F401  before torch, as every script
import torch
from timing import (JPEGS, MXNET_PYTHON, add_competitors_option, competing, context, interleaved, jpeg_name,
                    jpegs_source, ratio, real_jpegs, summary, write_result)

from imgdag import codec
from imgdag.formats.lst import LstEntry, write_lst
from imgdag.formats.recordio import RecordReader
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.imagedata import ImageBatches, RecordImages

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
EPOCHS = 2  # epoch 1: the pool starting; epoch 2: warm
RECORD_SIZES = {"full": PackOptions(pass_through=True), "256": PackOptions(resize=256, quality=95)}

MXNET_SIDE = r"""
import json, sys, time
import mxnet as mx
job, rec, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mean, std = [255 * m for m in json.loads(sys.argv[5])], [255 * s for s in json.loads(sys.argv[6])]
start = time.perf_counter()  # before the iterator: it starts decoding when made
if job == "loader":
    it = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=rec[:-4] + ".idx", data_shape=(3, 224, 224),
                               batch_size=batch, shuffle=True, random_resized_crop=True,
                               min_random_area=0.08, min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3,
                               rand_mirror=True, mean_r=mean[0], mean_g=mean[1], mean_b=mean[2],
                               std_r=std[0], std_g=std[1], std_b=std[2], preprocess_threads=workers,
                               round_batch=False, seed=0)
    seconds, images = [], []
    for epoch in range(int(sys.argv[7])):
        if epoch:
            it.reset()
        n = 0
        for b in it:
            b.data[0].wait_to_read()
            n += batch - b.pad
        seconds.append(time.perf_counter() - start)
        images.append(n)
        start = time.perf_counter()
    print(json.dumps({"epoch_seconds": seconds, "images": images}))
else:
    n = 0
    reader = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r")
    for key in reader.keys:
        header, image = mx.recordio.unpack_img(reader.read_idx(key), iscolor=1)
        n += 1
    print(json.dumps({"seconds": time.perf_counter() - start, "images": n}))
"""

DALI_SIDE = r"""
import json, sys, time
import nvidia.dali.fn as fn
import nvidia.dali.types as types
from nvidia.dali import pipeline_def
from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy
rec, batch, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mean, std = [255 * m for m in json.loads(sys.argv[4])], [255 * s for s in json.loads(sys.argv[5])]


@pipeline_def(batch_size=batch, num_threads=workers, device_id=None, seed=0)
def train_crops():
    jpegs, labels = fn.readers.mxnet(path=[rec], index_path=[rec[:-4] + ".idx"], random_shuffle=True,
                                     seed=0, name="records")
    images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                           random_area=[0.08, 1.0], random_aspect_ratio=[3 / 4, 4 / 3])
    images = fn.resize(images, resize_x=224, resize_y=224)
    images = fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW", mean=mean, std=std,
                                      mirror=fn.random.coin_flip())
    return images, labels


start = time.perf_counter()  # before the pipeline: building it starts its threads and prefetching
pipe = train_crops()
pipe.build()
it = DALIGenericIterator([pipe], ["data", "label"], reader_name="records",
                         last_batch_policy=LastBatchPolicy.PARTIAL)
seconds, images = [], []
for epoch in range(int(sys.argv[6])):
    if epoch:
        it.reset()
    n = 0
    for b in it:
        n += len(b[0]["data"])
    seconds.append(time.perf_counter() - start)
    images.append(n)
    start = time.perf_counter()
print(json.dumps({"epoch_seconds": seconds, "images": images, "reader_size": pipe.epoch_size("records")}))
"""


def ours_loader(rec, batch, workers):
    def run():
        start = time.perf_counter()  # the workers start with the first epoch
        batches = ImageBatches(RecordImages(rec), batch, torch.device("cpu"), MEAN, STD, 224, train=True,
                               mirror=True, num_workers=workers)
        seconds, images = [], []
        for epoch in range(EPOCHS):
            n = 0
            for x, _ in batches.epoch(epoch):
                n += len(x)
            seconds.append(time.perf_counter() - start)
            images.append(n)
            start = time.perf_counter()
        return {"epoch_seconds": seconds, "images": images}
    return run


def decode_limit(rec, workers):
    """Two passes (as two epochs) of `workers` threads reading and decoding every record."""
    def decode(reader, i):
        codec.decode_rgb(reader[i].image, f"{rec} record {reader.keys[i]}", fast=True)

    def run():
        seconds, images = [], []
        with RecordReader(rec) as reader, ThreadPoolExecutor(workers) as pool:
            for _ in range(EPOCHS):
                start = time.perf_counter()
                images.append(sum(1 for _ in pool.map(decode, [reader] * len(reader), range(len(reader)))))
                seconds.append(time.perf_counter() - start)
        return {"epoch_seconds": seconds, "images": images}
    return run


def ours_decode(rec):
    def run():
        start, n = time.perf_counter(), 0
        with RecordReader(rec) as reader:
            for i in range(len(reader)):
                record = reader[i]
                codec.decode_rgb(record.image, f"{rec} record {record.header.id}")
                n += 1
        return {"seconds": time.perf_counter() - start, "images": n}
    return run


def process_side(python, code, *args):
    """A side run as `python -c code args...`; the JSON its last line prints."""
    def run():
        done = subprocess.run([str(python), "-c", code, *map(str, args)], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{python} side failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    return run


def absent_peers() -> dict:
    """Peer -> why it is left out, for the peers whose package or environment is missing."""
    absent = {}
    if not MXNET_PYTHON.exists():
        absent["mxnet"] = f"not measured: {MXNET_PYTHON} is absent (make mxnet-env)"
    if importlib.util.find_spec("nvidia.dali") is None:
        absent["dali"] = f"not measured: nvidia.dali is not installed in {sys.prefix} (make bench-env)"
    for reason in absent.values():
        print(reason, file=sys.stderr)
    return absent


def loader_entry(results: dict, records: int) -> dict:
    """Per epoch: each side's summary (with the most 1-minute load seen) and ours over each peer
    in images/s (= the peer's seconds over ours)."""
    entry = {}
    for epoch in range(EPOCHS):
        sides = {}
        for name, runs in results.items():
            for r in runs:
                assert r["images"][epoch] == records, (name, epoch, r["images"], records)
            sides[name] = summary([{"seconds": r["epoch_seconds"][epoch], "load_1min": r["load_1min"]}
                                   for r in runs], records, "img")
        for peer in ("mxnet", "dali", "decode_limit"):
            if peer in sides:
                sides[f"ratio_ours_over_{peer}_img_per_s"] = ratio(sides["ours"], sides[peer])
        entry[f"epoch_{epoch + 1}"] = sides
    return entry


def with_load(run):
    def timed():
        return {**run(), "load_1min": round(os.getloadavg()[0], 2)}
    return timed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--records", type=int, default=1024, help="a multiple of --batch (ImageRecordIter pads)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2,
                   help="our loader workers, ImageRecordIter's preprocess_threads, DALI's num_threads")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke test: one batch of records, one repeat")
    add_competitors_option(p)
    p.add_argument("--out", help="JSON output (default benchmarks/out/rec_loader.json)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.records, args.repeats = args.batch, 1
    files = real_jpegs()
    absent = absent_peers()
    work = Path(tempfile.mkdtemp(prefix="bench-rec-loader-"))
    result = {**context(), "quick": args.quick, **jpegs_source(files), "records": args.records, "batch": args.batch,
              "workers": args.workers, "repeats": args.repeats, "epochs": EPOCHS,
              "competitors": args.competitors, **absent}
    mean_std = (json.dumps(MEAN), json.dumps(STD))
    try:
        write_lst(work / "real.lst", [LstEntry(i, (float(i % 10),), jpeg_name(files[i % len(files)]))
                                      for i in range(args.records)])
        runs, recs = {}, {}
        for size, options in RECORD_SIZES.items():
            rec = recs[size] = work / f"real_{size}.rec"
            pack(work / "real.lst", JPEGS, rec, rec.with_suffix(".idx"), options, num_workers=args.workers)
            runs[size, "ours"] = ours_loader(rec, args.batch, args.workers)
            if "mxnet" not in absent:
                runs[size, "mxnet"] = process_side(MXNET_PYTHON, MXNET_SIDE, "loader", rec, args.batch,
                                                   args.workers, *mean_std, EPOCHS)
            if "dali" not in absent:
                runs[size, "dali"] = process_side(sys.executable, DALI_SIDE, rec, args.batch, args.workers,
                                                  *mean_std, EPOCHS)
            runs[size, "decode_limit"] = decode_limit(rec, args.workers)
        with competing(args.competitors):
            results = interleaved({key: with_load(run) for key, run in runs.items()}, args.repeats)
        result["loader"] = {}
        for size, rec in recs.items():
            sides = {name: r for (s, name), r in results.items() if s == size}
            if "dali" in sides:
                assert all(r["reader_size"] == args.records for r in sides["dali"]), sides["dali"]
            result["loader"][size] = {"mean_record_kb": round(rec.stat().st_size / args.records / 1024, 1),
                                      **loader_entry(sides, args.records)}

        decode = {"ours": ours_decode(recs["full"])}
        if "mxnet" not in absent:
            decode["mxnet"] = process_side(MXNET_PYTHON, MXNET_SIDE, "decode", recs["full"], args.batch,
                                           args.workers, *mean_std)
        with competing(args.competitors):
            results = interleaved(decode, args.repeats)
        for name, r in results.items():
            assert all(x["images"] == args.records for x in r), (name, r)
        entry = {name: summary([{"seconds": x["seconds"]} for x in r], args.records, "img")
                 for name, r in results.items()}
        if "mxnet" in entry:
            entry["ratio_mxnet_s_over_ours_s"] = ratio(entry["ours"], entry["mxnet"])
        result["decode"] = entry
    finally:
        shutil.rmtree(work)
    write_result("rec_loader", result, args.out)


if __name__ == "__main__":
    main()
