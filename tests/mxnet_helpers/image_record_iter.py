"""Run by .venv-mxnet's Python: one epoch of mx.io.ImageRecordIter over a .rec, saved.

usage: image_record_iter.py REC OUT.npz --shape C,H,W --batch-size B --label-width L [--idx IDX]

No shuffle, no augmentation, one preprocessing thread. OUT.npz holds data (N, C, H, W float32,
RGB, as the iterator gives it) and label (N, L), the last batch's padding removed.
"""
import argparse

import mxnet as mx
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("rec")
p.add_argument("out")
p.add_argument("--shape", required=True)
p.add_argument("--batch-size", type=int, required=True)
p.add_argument("--label-width", type=int, default=1)
p.add_argument("--idx", default="")
args = p.parse_args()

batches = mx.io.ImageRecordIter(
    path_imgrec=args.rec,
    path_imgidx=args.idx,
    data_shape=tuple(int(x) for x in args.shape.split(",")),
    batch_size=args.batch_size,
    label_width=args.label_width,
    shuffle=False,
    preprocess_threads=1,
)
data, labels = [], []
for batch in batches:
    keep = args.batch_size - batch.pad
    data.append(batch.data[0].asnumpy()[:keep])
    labels.append(batch.label[0].asnumpy().reshape(args.batch_size, -1)[:keep])
np.savez(args.out, data=np.concatenate(data), label=np.concatenate(labels))
print(f"ImageRecordIter gave {sum(len(d) for d in data)} images of {args.rec}")
