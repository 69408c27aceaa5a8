#!/usr/bin/env python3
"""Writes torchvision_networks.safetensors: torchvision's fcn_resnet50 and
deeplabv3_resnet50 (the standard 7x7 stem) inference logits on one 72x56
image, every weight set from the closed-form fill of fixture_fill.py (keyed
by our parameter names through the torchvision -> ours mapping below).

torchvision resizes the head's output to the input with
align_corners=False; SPEC section 4 (MXNet's BilinearResize2D) uses
align_corners=True. So the logits recorded here are torchvision's
backbone + classifier, resized with align_corners=True (the model's own
layers are unchanged). The ASPP pooling branch resizes a 1x1 map, where both
conventions agree.

Run with torch and torchvision from PyPI in a venv outside the repository:
    python3 -m venv /tmp/venv-tv && /tmp/venv-tv/bin/pip install torch torchvision
    /tmp/venv-tv/bin/python Tests/SegmentationTests/Fixtures/generate_torchvision_fixtures.py
"""
import os
import re
import sys

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.segmentation import deeplabv3_resnet50, fcn_resnet50

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_fill import fill, image, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES, HEIGHT, WIDTH = 5, 72, 56
torch.set_num_threads(2)


def our_name(name):
    """torchvision state-dict name -> ours (the table Swift implements in WeightNameMapping)."""
    if name.startswith("backbone."):
        return name
    m = re.match(r"^aux_classifier\.(\d+)\.(.*)$", name)
    if m:
        return f"aux_head.block.{m.group(1)}.{m.group(2)}"
    m = re.match(r"^classifier\.0\.(convs|project)\.(.*)$", name)  # DeepLabV3's ASPP
    if m:
        return f"head.aspp.{m.group(1)}.{m.group(2)}"
    m = re.match(r"^classifier\.(\d+)\.(.*)$", name)
    if m:
        index, rest = int(m.group(1)), m.group(2)
        return f"head.block.{index}.{rest}"
    raise ValueError(name)


def deeplab_our_name(name):
    # DeepLabHead is [ASPP, conv3x3, BN, ReLU, conv1x1]: classifier.1/2/4 -> block.0/1/4
    m = re.match(r"^classifier\.([124])\.(.*)$", name)
    if m:
        return f"head.block.{ {'1': 0, '2': 1, '4': 4}[m.group(1)] }.{m.group(2)}"
    return our_name(name)


tensors, metadata = {}, {}
x = torch.from_numpy(image((1, 3, HEIGHT, WIDTH)))
tensors["input"] = x.numpy()
for key, make, mapping in [("fcn", fcn_resnet50, our_name), ("deeplab", deeplabv3_resnet50, deeplab_our_name)]:
    model = make(weights=None, weights_backbone=None, num_classes=CLASSES, aux_loss=True).eval()
    names = []
    state = model.state_dict()
    metadata[f"torchvision_{key}_source_names"] = ",".join(sorted(state.keys()))
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        ours = mapping(name)
        state[name] = torch.from_numpy(fill(ours, tuple(value.shape)))
        names.append(ours)
    model.load_state_dict(state)
    with torch.no_grad():
        features = model.backbone(x)
        logits = F.interpolate(model.classifier(features["out"]), size=(HEIGHT, WIDTH), mode="bilinear", align_corners=True)
        aux = F.interpolate(model.aux_classifier(features["aux"]), size=(HEIGHT, WIDTH), mode="bilinear", align_corners=True)
    tensors[f"torchvision_{key}/logits"] = logits.numpy()
    tensors[f"torchvision_{key}/aux_logits"] = aux.numpy()
    metadata[f"torchvision_{key}"] = ",".join(sorted(names))
    # trainable parameter counts of the reference models with 21 classes, for Docs and ParameterCountTests
    for depth, maker in [("50", make), ("101", {"fcn": torchvision.models.segmentation.fcn_resnet101,
                                                  "deeplab": torchvision.models.segmentation.deeplabv3_resnet101}[key])]:
        reference = maker(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
        trainable = sum(p.numel() for p in reference.parameters())
        buffers = sum(b.numel() for n, b in reference.named_buffers() if not n.endswith("num_batches_tracked"))
        print(f"torchvision {key} resnet{depth}: trainable {trainable}, running statistics {buffers}")
        metadata[f"count_{key}_resnet{depth}"] = f"{trainable},{buffers}"

metadata["generator"] = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
path = os.path.join(HERE, "torchvision_networks.safetensors")
write_safetensors(path, tensors, metadata)
print(f"wrote {path} ({os.path.getsize(path)} bytes)")
