"""Run by .venv-mxnet's Python: read a .rec with MXNet 1.9.1 and save what MXNet sees.

usage: read_rec.py REC OUT.npz [--idx IDX] [--iscolor N] [--raw]

With --idx: MXIndexedRecordIO, the records in .idx order by read_idx(key); without: MXRecordIO,
the records in file order. OUT.npz holds keys (the .idx keys, or with no .idx the ids, or
with --raw the positions) and per record i payload_i (the raw record bytes). Unless --raw
(records that are not image records), also the mx.recordio.unpack header fields flag, label
(0 where flag > 0), id, id2, per record labels_i (the packed labels, or [header.label]) and,
with --iscolor, image_i (mx.recordio.unpack_img with that cv2 flag; BGR order).
"""
import argparse

import mxnet as mx
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("rec")
p.add_argument("out")
p.add_argument("--idx")
p.add_argument("--iscolor", type=int)
p.add_argument("--raw", action="store_true")
args = p.parse_args()

if args.idx:
    reader = mx.recordio.MXIndexedRecordIO(args.idx, args.rec, "r")
    keys = list(reader.keys)
    payloads = [reader.read_idx(key) for key in keys]
else:
    reader = mx.recordio.MXRecordIO(args.rec, "r")
    payloads = list(iter(reader.read, None))
    keys = list(range(len(payloads)))
reader.close()

arrays = {f"payload_{i}": np.frombuffer(payload, dtype=np.uint8) for i, payload in enumerate(payloads)}
if not args.raw:
    headers = [mx.recordio.unpack(payload)[0] for payload in payloads]
    keys = keys if args.idx else [h.id for h in headers]
    for i, (header, payload) in enumerate(zip(headers, payloads, strict=True)):
        arrays[f"labels_{i}"] = np.atleast_1d(np.asarray(header.label, dtype=np.float32))
        if args.iscolor is not None:
            arrays[f"image_{i}"] = mx.recordio.unpack_img(payload, args.iscolor)[1]
    arrays.update(
        flag=np.array([h.flag for h in headers], dtype=np.int64),
        label=np.array([0.0 if h.flag else h.label for h in headers], dtype=np.float32),
        id=np.array([h.id for h in headers], dtype=np.uint64),
        id2=np.array([h.id2 for h in headers], dtype=np.uint64),
    )
np.savez(args.out, keys=np.array(keys, dtype=np.int64), **arrays)
print(f"MXNet read {len(payloads)} records of {args.rec}")
