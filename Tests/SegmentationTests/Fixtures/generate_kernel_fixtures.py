#!/usr/bin/env python3
"""Writes kernels.safetensors: PyTorch reference outputs and gradients for the
numeric core's kernels.

Inputs are never stored. Every input tensor is a closed-form fill,
    x[i] = float32(amplitude * sin(frequency * i + phase)),   i = flat row-major index,
computed with Python's math.sin (the same libm the Swift tests call), and its
parameters are stored in the file's metadata, so the Swift tests rebuild the
exact same inputs. Gradients are those of L = sum(r * y), with r a fill of the
output's shape ("projection" in the metadata).

Run (outside the repository's build, with torch from PyPI in a venv):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch numpy
    /tmp/venv/bin/python Tests/SegmentationTests/Fixtures/generate_kernel_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_fill import write_safetensors  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "kernels.safetensors")

tensors = {}   # name -> float32 numpy array
metadata = {}  # case -> JSON string


def fill(shape, frequency, phase=0.0, amplitude=1.0):
    n = int(np.prod(shape)) if len(shape) else 1
    values = [amplitude * math.sin(frequency * i + phase) for i in range(n)]
    return np.asarray(values, dtype=np.float64).astype(np.float32).reshape(shape)


class Case:
    def __init__(self, name, op, params=None):
        self.name, self.op, self.params = name, op, params or {}
        self.inputs, self.torch_inputs = {}, {}

    def input(self, key, shape, frequency, phase=0.0, amplitude=1.0, grad=True):
        self.inputs[key] = {"shape": list(shape), "frequency": frequency, "phase": phase, "amplitude": amplitude}
        t = torch.from_numpy(fill(shape, frequency, phase, amplitude)).requires_grad_(grad)
        self.torch_inputs[key] = t
        return t

    def finish(self, outputs, loss_output=None, projection=(0.71, 0.3), extra=None):
        """outputs: dict name -> tensor to store; loss_output: the tensor whose
        projection drives the gradients (or a scalar loss tensor)."""
        record = {"op": self.op, "params": self.params, "inputs": self.inputs}
        if loss_output is not None:
            if loss_output.dim() == 0:
                loss = loss_output
            else:
                freq, phase = projection
                r = torch.from_numpy(fill(tuple(loss_output.shape), freq, phase))
                record["projection"] = {"shape": list(loss_output.shape), "frequency": freq, "phase": phase, "amplitude": 1.0}
                loss = (loss_output.double() * r.double()).sum()
            loss.backward()
            for key, t in self.torch_inputs.items():
                if t.grad is not None:
                    outputs["grad_" + key] = t.grad
        if extra:
            record.update(extra)
        for key, t in outputs.items():
            tensors[f"{self.name}/{key}"] = t.detach().to(torch.float32).numpy()
        metadata[self.name] = json.dumps(record, sort_keys=True)


# Convolutions: odd sizes, stride 2, dilation 2 and 4, padding 0 and > 0, batch > 1,
# the pointwise fast path and the 7×7/2 stem.
CONVS = [
    # name, N, C, K, H, W, kernel, stride, padding, dilation, bias
    ("conv_3x3_pad1_bias", 2, 3, 4, 7, 9, 3, 1, 1, 1, True),
    ("conv_3x3_stride2", 1, 5, 6, 11, 10, 3, 2, 1, 1, False),
    ("conv_3x3_dilation2", 3, 4, 3, 9, 9, 3, 1, 2, 2, True),
    ("conv_3x3_dilation4", 2, 3, 2, 13, 12, 3, 1, 4, 4, False),
    ("conv_3x3_pad0", 2, 2, 3, 6, 5, 3, 1, 0, 1, True),
    ("conv_1x1_pointwise", 2, 6, 5, 5, 7, 1, 1, 0, 1, True),
    ("conv_1x1_stride2", 2, 4, 3, 8, 7, 1, 2, 0, 1, False),
    ("conv_7x7_stem", 1, 3, 4, 15, 13, 7, 2, 3, 1, False),
]
for name, n, c, k, h, w, ks, s, p, d, bias in CONVS:
    case = Case(name, "conv2d", {"kernel": ks, "stride": s, "padding": p, "dilation": d, "bias": bias})
    x = case.input("input", (n, c, h, w), 0.37, 0.1)
    wt = case.input("weight", (k, c, ks, ks), 0.53, 0.7, 0.5)
    b = case.input("bias", (k,), 1.3, 0.2, 0.3) if bias else None
    y = F.conv2d(x, wt, b, stride=s, padding=p, dilation=d)
    case.finish({"output": y}, y)

# Batch norm, training mode: output, batch mean, biased batch variance, gradients.
case = Case("batchnorm_training", "batchnorm_training", {"epsilon": 1e-5})
x = case.input("input", (2, 3, 5, 7), 0.29, 0.4, 2.0)
g = case.input("scale", (3,), 1.1, 0.5, 1.5)
b = case.input("shift", (3,), 0.9, 0.1, 0.5)
y = F.batch_norm(x, None, None, g, b, training=True, momentum=0.0, eps=1e-5)
xd = x.detach()
case.finish({"output": y, "mean": xd.mean(dim=(0, 2, 3)), "variance": xd.var(dim=(0, 2, 3), unbiased=False)}, y)

# Batch norm, inference mode with running statistics.
case = Case("batchnorm_inference", "batchnorm_inference", {"epsilon": 1e-5})
x = case.input("input", (2, 4, 3, 5), 0.31, 0.2, 1.5)
g = case.input("scale", (4,), 1.7, 0.5, 1.2)
b = case.input("shift", (4,), 0.8, 0.3, 0.4)
rm = case.input("running_mean", (4,), 0.6, 0.9, 0.3, grad=False)
rv = case.input("running_variance", (4,), 0.45, 0.2, 0.5, grad=False)
with torch.no_grad():
    rv_pos = rv + 1.0  # variance must be positive: the Swift side adds 1 the same way
y = F.batch_norm(x, rm, rv_pos, g, b, training=False, eps=1e-5)
case.finish({"output": y}, y, extra={"variance_offset": 1.0})

# ReLU (gradient of the kink is not compared: no input is within 1e-3 of 0, checked below).
case = Case("relu", "relu")
x = case.input("input", (2, 3, 4, 5), 0.77, 0.05, 1.0)
assert x.detach().abs().min() > 1e-3
y = F.relu(x)
case.finish({"output": y}, y)

# Max pool 3×3 / 2 / 1 on odd and even planes (the sinusoid has no ties within a window).
for name, h, w in [("maxpool_odd", 9, 11), ("maxpool_even", 8, 8)]:
    case = Case(name, "maxpool", {"kernel": 3, "stride": 2, "padding": 1})
    x = case.input("input", (2, 3, h, w), 0.91, 0.3, 1.0)
    y = F.max_pool2d(x, 3, 2, 1)
    case.finish({"output": y}, y)

# Adaptive average pooling to the PSP bins, including more bins than cells.
for name, h, w, bins in [("avgpool_1", 7, 9, 1), ("avgpool_2", 7, 9, 2), ("avgpool_3", 7, 9, 3),
                         ("avgpool_6", 7, 9, 6), ("avgpool_6_small", 5, 4, 6)]:
    case = Case(name, "adaptive_avgpool", {"bins": bins})
    x = case.input("input", (2, 2, h, w), 0.43, 0.6, 1.0)
    y = F.adaptive_avg_pool2d(x, bins)
    case.finish({"output": y}, y)

# Bilinear resize with align_corners=True: up, down, from and to 1×1, identity.
for name, h, w, oh, ow in [("bilinear_up", 5, 7, 9, 13), ("bilinear_down", 7, 9, 4, 5),
                           ("bilinear_from_1", 1, 1, 3, 4), ("bilinear_to_1", 5, 6, 1, 1),
                           ("bilinear_identity", 4, 4, 4, 4), ("bilinear_mixed", 6, 3, 2, 8)]:
    case = Case(name, "bilinear", {"height": oh, "width": ow})
    x = case.input("input", (2, 2, h, w), 0.57, 0.2, 1.0)
    y = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=True)
    case.finish({"output": y}, y)

# Softmax cross-entropy, mean over non-ignored pixels (255 = ignore).
case = Case("cross_entropy", "cross_entropy")
z = case.input("logits", (2, 5, 3, 4), 0.83, 0.4, 3.0)
labels = np.array([(i * 7 + 3) % 6 for i in range(2 * 3 * 4)], dtype=np.int64)
labels[labels == 5] = 255
loss = F.cross_entropy(z, torch.from_numpy(labels).reshape(2, 3, 4), ignore_index=255, reduction="mean")
case.finish({"loss": loss.reshape(1)}, loss, extra={"labels": labels.tolist()})

# Channel concatenation and residual addition.
case = Case("concatenate", "concatenate")
a = case.input("a", (2, 2, 3, 4), 0.3, 0.1)
b = case.input("b", (2, 3, 3, 4), 0.5, 0.2)
c = case.input("c", (2, 1, 3, 4), 0.7, 0.3)
y = torch.cat([a, b, c], dim=1)
case.finish({"output": y}, y)

case = Case("add", "add")
a = case.input("a", (2, 3, 4, 5), 0.3, 0.1)
b = case.input("b", (2, 3, 4, 5), 0.5, 0.2)
y = a + b
case.finish({"output": y}, y)


write_safetensors(OUT, tensors, metadata)
print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, torch {torch.__version__}")
