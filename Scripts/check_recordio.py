#!/usr/bin/env python3
"""Checks `segment predict --accept application/x-recordio-protobuf` output
with the readers SageMaker users have: MXNet's RecordIO reader and the
SageMaker Python SDK's `record_pb2` (the Record protobuf).

    python Scripts/check_recordio.py NAME.rec [NAME.png ...]

For each .rec file: every record is read with mxnet.recordio.MXRecordIO,
parsed with sagemaker.amazon.record_pb2.Record, and checked: features
"shape" is an Int32Tensor [1, C, H, W], features "target" a Float32Tensor of
C*H*W probabilities that sum to 1 per pixel. When the matching mask PNG
(same base name, from a predict run with the default --accept image/png)
exists beside it or is given, its size must be W x H and its pixels the
per-pixel argmax of the probabilities. Needs: mxnet, sagemaker (< 3), numpy,
Pillow. Exits non-zero on any failure.
"""
import os
import sys

import numpy as np
from mxnet import recordio
from PIL import Image
from sagemaker.amazon.record_pb2 import Record


def check(rec_path, mask_path):
    reader = recordio.MXRecordIO(rec_path, "r")
    count = 0
    while True:
        payload = reader.read()
        if payload is None:
            break
        record = Record()
        record.ParseFromString(payload)
        shape = list(record.features["shape"].int32_tensor.values)
        values = np.array(record.features["target"].float32_tensor.values, dtype=np.float32)
        assert len(shape) == 4 and shape[0] == 1, f"{rec_path}: shape {shape} is not [1, C, H, W]"
        assert values.size == np.prod(shape), f"{rec_path}: {values.size} values for shape {shape}"
        probabilities = values.reshape(shape)
        sums = probabilities.sum(axis=1)
        worst = float(np.abs(sums - 1).max())
        assert worst < 1e-4, f"{rec_path}: probabilities sum to 1 within {worst}"
        line = f"{rec_path}: record {count}: shape {shape}, per-pixel sums within {worst:.1e} of 1"
        if mask_path and os.path.exists(mask_path):
            mask = np.array(Image.open(mask_path))
            assert mask.shape == tuple(shape[2:]), f"{mask_path}: {mask.shape} vs {shape[2:]}"
            agree = float((probabilities[0].argmax(axis=0) == mask).mean())
            assert agree == 1.0, f"{mask_path}: argmax agrees on {agree:.4%} of pixels"
            line += f"; argmax equals {os.path.basename(mask_path)} on every pixel"
        print(line)
        count += 1
    reader.close()
    assert count > 0, f"{rec_path}: no records"


def main(arguments):
    recs = [a for a in arguments if a.endswith(".rec")]
    masks = {os.path.splitext(os.path.basename(a))[0]: a for a in arguments if a.endswith(".png")}
    if not recs:
        sys.exit(__doc__)
    for rec in recs:
        name = os.path.splitext(os.path.basename(rec))[0]
        check(rec, masks.get(name, os.path.splitext(rec)[0] + ".png"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
