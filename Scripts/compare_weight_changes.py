#!/usr/bin/env python3
"""Compares two training runs that started from the same weights (SPEC §10).

    compare_weight_changes.py PRIOR.safetensors ONE.safetensors MANY.safetensors

With ΔW₁ = ONE − PRIOR (one process) and ΔW_N = MANY − PRIOR (N ranks),
prints ‖ΔW_N − ΔW₁‖ / ‖ΔW₁‖ over all trainable tensors together (BN running
statistics excluded), and the tensors with the largest difference. Reads
safetensors directly (8-byte header length, JSON header, raw F32 data); needs numpy.
"""
import json
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        start, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").astype(np.float64)
    return tensors


def main():
    prior, one, many = (read(p) for p in sys.argv[1:4])
    names = [n for n in prior if not n.endswith(("running_mean", "running_var"))]
    difference = change = 0.0
    rows = []
    for name in names:
        d1 = one[name] - prior[name]
        dn = many[name] - prior[name]
        dd = float(np.sum((dn - d1) ** 2))
        c = float(np.sum(d1 ** 2))
        difference += dd
        change += c
        rows.append((dd, c, name))
    print(f"tensors compared: {len(names)}")
    print(f"||dW_N - dW_1|| / ||dW_1|| = {np.sqrt(difference / change):.3e}  (||dW_1|| = {np.sqrt(change):.4e})")
    rows.sort(reverse=True)
    for dd, c, name in rows[:5]:
        print(f"  {name}: own relative {np.sqrt(dd / max(c, 1e-300)):.3e}, of the whole change {np.sqrt(dd / change):.3e}")


if __name__ == "__main__":
    main()
