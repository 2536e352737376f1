"""Reading a .rec for training: our loader against MXNet 1.9.1's, on real ImageNet JPEGs.

A .rec of the real ImageNet sample JPEGs repeated (pass-through, so the records hold the
original JPEGs), read by both sides from the same file, interleaved per repeat:
- loader: one epoch of random-resized crops 224 + mirror, batch 64, `--workers` decode workers:
  imgdag.imagedata.ImageBatches over RecordImages (uint8 batches, normalised on the CPU here
  with one torch thread: more would busy-wait against the workers on a 2-core machine)
  against mx.io.ImageRecordIter(random_resized_crop, rand_mirror, preprocess_threads=workers);
- decode: every record read and decoded to RGB in one thread: RecordReader + imgdag.codec
  against MXIndexedRecordIO + mx.recordio.unpack_img.
Each side is timed inside its process after imports and set-up (MXNet in .venv-mxnet). Writes
benchmarks/out/rec_loader.json. `--quick`: one batch of records, one repeat (a smoke test, not timed).
"""
import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from timing import MXNET_PYTHON, context, interleaved, ratio, real_jpegs, summary, write_result

from imgdag import codec
from imgdag.formats.lst import LstEntry, write_lst
from imgdag.formats.recordio import RecordReader
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.imagedata import ImageBatches, RecordImages

MXNET_SIDE = r"""
import json, sys, time
import mxnet as mx
job, rec, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
start, n = time.perf_counter(), 0  # before the iterator: it starts decoding when made
if job == "loader":
    it = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=rec[:-4] + ".idx", data_shape=(3, 224, 224),
                               batch_size=batch, shuffle=True, random_resized_crop=True,
                               min_random_area=0.08, rand_mirror=True, preprocess_threads=workers,
                               round_batch=False, seed=0)
    for b in it:
        b.data[0].wait_to_read()
        n += batch - b.pad
else:
    reader = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r")
    for key in reader.keys:
        header, image = mx.recordio.unpack_img(reader.read_idx(key), iscolor=1)
        n += 1
print(json.dumps({"seconds": time.perf_counter() - start, "images": n}))
"""


def ours_loader(rec, batch, workers):
    batches = ImageBatches(RecordImages(rec), batch, torch.device("cpu"), [0.485, 0.456, 0.406],
                           [0.229, 0.224, 0.225], 224, train=True, mirror=True, num_workers=workers)
    epoch = iter(range(1000))

    def run():
        start, n = time.perf_counter(), 0
        for x, _ in batches.epoch(next(epoch)):
            n += len(x)
        return {"seconds": time.perf_counter() - start, "images": n}
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


def mxnet_side(job, rec, batch, workers):
    def run():
        out = subprocess.run([MXNET_PYTHON, "-c", MXNET_SIDE, job, rec, str(batch), str(workers)],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--records", type=int, default=1024, help="a multiple of --batch (ImageRecordIter pads)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="our loader workers, ImageRecordIter's preprocess_threads")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke test: one batch of records, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/rec_loader.json)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.records, args.repeats = args.batch, 1
    files = real_jpegs()
    work = Path(tempfile.mkdtemp(prefix="bench-rec-loader-"))
    result = {**context(), "quick": args.quick, "records": args.records, "batch": args.batch,
              "workers": args.workers, "repeats": args.repeats}
    try:
        write_lst(work / "real.lst", [LstEntry(i, (float(i % 10),), files[i % len(files)].name)
                                      for i in range(args.records)])
        rec = work / "real.rec"
        pack(work / "real.lst", files[0].parent, rec, work / "real.idx", PackOptions(pass_through=True))
        jobs = {"loader": {"ours": ours_loader(rec, args.batch, args.workers)},
                "decode": {"ours": ours_decode(rec)}}
        for job, runs in jobs.items():
            if MXNET_PYTHON.exists():
                runs["mxnet"] = mxnet_side(job, str(rec), args.batch, args.workers)
            results = interleaved(runs, args.repeats)
            for name, r in results.items():
                assert all(x["images"] == args.records for x in r), (name, r)
            entry = {name: summary([{"seconds": x["seconds"]} for x in r], args.records, "img")
                     for name, r in results.items()}
            if "mxnet" in entry:
                entry["ratio_mxnet_s_over_ours_s"] = ratio(entry["ours"], entry["mxnet"])
            result[job] = entry
        if not MXNET_PYTHON.exists():
            result["mxnet"] = f"not measured: {MXNET_PYTHON} is absent (bash scripts/setup_mxnet_env.sh)"
    finally:
        shutil.rmtree(work)
    write_result("rec_loader", result, args.out)


if __name__ == "__main__":
    main()
