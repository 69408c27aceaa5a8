#!/usr/bin/env python3
"""The PyTorch CPU reference for `segment bench model`: the same step on the
same machine, for the ratio reported in Docs/performance.md.

    python3 -m venv /tmp/venv-tv && /tmp/venv-tv/bin/pip install torch torchvision
    /tmp/venv-tv/bin/python Scripts/bench_pytorch.py --algorithm fcn --crop 240 --batch 2 --train

A training step is: forward in training mode with the aux head, loss =
CE(main) + 0.5 CE(aux) with ignore_index 255, backward, SGD (momentum 0.9,
weight decay 1e-4) update; torchvision's models have the standard 7x7 stem, so
compare with `segment bench model --stem standard`. Threads default to the
core count (torch.set_num_threads). Prints one JSON object.
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torchvision.models import segmentation

parser = argparse.ArgumentParser()
parser.add_argument("--algorithm", choices=["fcn", "deeplab"], default="fcn")
parser.add_argument("--backbone", choices=["resnet-50", "resnet-101"], default="resnet-50")
parser.add_argument("--crop", type=int, default=240)
parser.add_argument("--batch", type=int, default=2)
parser.add_argument("--num-classes", type=int, default=21)
parser.add_argument("--train", action="store_true")
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--warmup", type=int, default=1)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

torch.set_num_threads(args.threads)
depth = args.backbone.split("-")[1]
make = getattr(segmentation, {"fcn": f"fcn_resnet{depth}", "deeplab": f"deeplabv3_resnet{depth}"}[args.algorithm])
model = make(weights=None, weights_backbone=None, num_classes=args.num_classes, aux_loss=True)
torch.manual_seed(0)
images = torch.rand(args.batch, 3, args.crop, args.crop) * 4 - 2
labels = torch.randint(0, args.num_classes, (args.batch, args.crop, args.crop))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)


def step():
    if args.train:
        model.train()
        output = model(images)
        loss = F.cross_entropy(output["out"], labels, ignore_index=255) \
            + 0.5 * F.cross_entropy(output["aux"], labels, ignore_index=255)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
    else:
        model.eval()
        with torch.no_grad():
            model(images)


for _ in range(args.warmup):
    step()
samples = []
for _ in range(args.runs):
    start = time.perf_counter()
    step()
    samples.append((time.perf_counter() - start) * 1000)
print(json.dumps({
    "framework": f"torch {torch.__version__}", "algorithm": args.algorithm, "backbone": args.backbone,
    "stem": "standard", "crop": args.crop, "batch": args.batch, "pass": "train" if args.train else "inference",
    "threads": args.threads, "median_ms": statistics.median(samples),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}, indent=2))
