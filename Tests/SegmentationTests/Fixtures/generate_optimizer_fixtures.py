#!/usr/bin/env python3
"""Writes optimizers.safetensors: the weights after each of 3 steps of
PyTorch's SGD (momentum, weight decay), SGD-Nesterov, Adam, Adagrad and
centered RMSprop (momentum), for the optimizers whose update equals MXNet's
(SPEC section 5) up to where epsilon sits.

w0[i] = sin(0.37 i + 0.1), gradient of step k (1-based) g_k[i] = sin((0.5 + 0.1 k) i + 0.3 k),
8 elements, learning rate 0.1 (metadata records every setting).

    /tmp/venv-tv/bin/python Tests/SegmentationTests/Fixtures/generate_optimizer_fixtures.py
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_fill import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N, LR, STEPS = 8, 0.1, 3


def w0():
    return torch.tensor([math.sin(0.37 * i + 0.1) for i in range(N)], dtype=torch.float32)


def grad(k):
    return torch.tensor([math.sin((0.5 + 0.1 * k) * i + 0.3 * k) for i in range(N)], dtype=torch.float32)


cases = {
    "sgd": lambda p: torch.optim.SGD([p], lr=LR, momentum=0.9, weight_decay=1e-4),
    "nag": lambda p: torch.optim.SGD([p], lr=LR, momentum=0.9, weight_decay=1e-4, nesterov=True),
    "adam": lambda p: torch.optim.Adam([p], lr=LR, betas=(0.9, 0.999), eps=1e-8),
    "adagrad": lambda p: torch.optim.Adagrad([p], lr=LR, eps=1e-10),
    "rmsprop": lambda p: torch.optim.RMSprop([p], lr=LR, alpha=0.9, eps=1e-8, momentum=0.9, centered=True),
}
tensors = {}
for name, make in cases.items():
    p = torch.nn.Parameter(w0())
    optimizer = make(p)
    for k in range(1, STEPS + 1):
        p.grad = grad(k)
        optimizer.step()
        tensors[f"{name}/step{k}"] = p.detach().clone().numpy()
metadata = {"settings": json.dumps({"lr": LR, "momentum": 0.9, "weight_decay": 1e-4, "gamma1": 0.9, "gamma2": 0.9}),
            "generator": f"torch {torch.__version__}"}
path = os.path.join(HERE, "optimizers.safetensors")
write_safetensors(path, tensors, metadata)
print(f"wrote {path} ({os.path.getsize(path)} bytes)")
