"""Closed-form weights shared by the network fixture generators and the Swift
tests (Tests/SegmentationTests/Support/NetworkFill.swift computes the same).

Every tensor is keyed by its name in *our* naming (state-dict style:
backbone.layer3.4.conv2.weight, head.block.4.bias, …):
    h      = FNV-1a 64-bit hash of the name's UTF-8 bytes
    f      = 0.05 + (h mod 1000) / 1000          frequency
    phase  = ((h >> 10) mod 1000) / 1000 * 3.0
    x[i]   = offset + amplitude * sin(f * i + phase)
with (offset, amplitude) by kind:
    conv weight [K, C, R, S]   (0, sqrt(2 / (C*R*S)))   variance 1/fan-in
    conv bias                  (0, 0.1)
    BN weight                  (1, 0.2)
    BN bias                    (0, 0.1)
    BN running_mean            (0, 0.1)
    BN running_var             (1, 0.5)                 stays >= 0.5
"""
import math

import numpy as np


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def kind_of(name, shape):
    if name.endswith("running_mean"):
        return 0.0, 0.1
    if name.endswith("running_var"):
        return 1.0, 0.5
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return 0.0, math.sqrt(2.0 / fan_in)
    if name.endswith("weight"):  # BN gamma (the only 1-D weight)
        return 1.0, 0.2
    return 0.0, 0.1  # BN beta, conv bias


def fill(name, shape):
    h = fnv1a64(name)
    frequency = 0.05 + (h % 1000) / 1000.0
    phase = ((h >> 10) % 1000) / 1000.0 * 3.0
    offset, amplitude = kind_of(name, shape)
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    values = offset + amplitude * np.sin(frequency * i + phase)
    return values.astype(np.float32).reshape(shape)


def image(shape, frequency=0.013, phase=0.5):
    n = int(np.prod(shape))
    return np.asarray([math.sin(frequency * i + phase) for i in range(n)], dtype=np.float64).astype(np.float32).reshape(shape)


def write_safetensors(path, tensors, metadata):
    import json
    import struct
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        blobs.append(array.tobytes())
    header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
