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

--predict times what `segment bench predict --stem standard` times: eval(),
no_grad, one forward without the aux head (the logits come back at the input
size) and the per-pixel argmax, per image:

    /tmp/venv-tv/bin/python Scripts/bench_pytorch.py --algorithm psp --crop 480 --batch 1 --predict

torchvision has no PSPNet; --algorithm psp builds SPEC §4's PSP head from
torch.nn on torchvision's dilated ResNet (the same layers and shapes as ours).
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
parser.add_argument("--algorithm", choices=["fcn", "deeplab", "psp"], default="fcn")
parser.add_argument("--backbone", choices=["resnet-50", "resnet-101"], default="resnet-50")
parser.add_argument("--crop", type=int, default=240)
parser.add_argument("--batch", type=int, default=2)
parser.add_argument("--num-classes", type=int, default=21)
parser.add_argument("--train", action="store_true")
parser.add_argument("--predict", action="store_true", help="eval forward without aux + argmax (bench predict)")
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--warmup", type=int, default=1)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

torch.set_num_threads(args.threads)
depth = args.backbone.split("-")[1]


class PSPHead(torch.nn.Module):
    """SPEC §4: pools to 1, 2, 3, 6 bins, 1x1 2048->512 + BN + ReLU each,
    resized back, concatenated with the features, then 3x3 4096->512, BN,
    ReLU, dropout 0.1, 1x1 512->C."""

    def __init__(self, classes):
        super().__init__()
        def branch():
            return torch.nn.Sequential(torch.nn.Conv2d(2048, 512, 1, bias=False), torch.nn.BatchNorm2d(512), torch.nn.ReLU())
        self.branches = torch.nn.ModuleList([branch() for _ in range(4)])
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(4096, 512, 3, padding=1, bias=False), torch.nn.BatchNorm2d(512), torch.nn.ReLU(),
            torch.nn.Dropout(0.1), torch.nn.Conv2d(512, classes, 1))

    def forward(self, x):
        size = x.shape[-2:]
        pooled = [F.interpolate(b(F.adaptive_avg_pool2d(x, bins)), size, mode="bilinear", align_corners=True)
                  for b, bins in zip(self.branches, (1, 2, 3, 6))]
        return self.block(torch.cat([x] + pooled, 1))


if args.algorithm == "psp":
    model = segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=args.num_classes,
                                      aux_loss=True) if depth == "50" else segmentation.fcn_resnet101(
        weights=None, weights_backbone=None, num_classes=args.num_classes, aux_loss=True)
    model.classifier = PSPHead(args.num_classes)
else:
    make = getattr(segmentation, {"fcn": f"fcn_resnet{depth}", "deeplab": f"deeplabv3_resnet{depth}"}[args.algorithm])
    model = make(weights=None, weights_backbone=None, num_classes=args.num_classes, aux_loss=True)
if args.predict:
    model.aux_classifier = None
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
    elif args.predict:
        model.eval()
        with torch.no_grad():
            model(images)["out"].argmax(1)
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
    "stem": "standard", "crop": args.crop, "batch": args.batch, "pass": "train" if args.train else ("predict" if args.predict else "inference"),
    "threads": args.threads, "median_ms": statistics.median(samples),
    "median_ms_per_image": statistics.median(samples) / args.batch,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}, indent=2))
