#!/usr/bin/env python3
"""Writes gluoncv_networks.safetensors: GluonCV's FCN, PSPNet and DeepLabV3
(ResNet-50 v1s, the deep stem) inference logits on one 72x56 image, with
every weight set from the closed-form fill of fixture_fill.py (keyed by our
parameter names through the GluonCV -> ours mapping below), plus a small
real MXNet .params file for the weight-reader tests.

Run with MXNet 1.9 and GluonCV from PyPI in a venv outside the repository:
    python3 -m venv /tmp/venv-mx
    /tmp/venv-mx/bin/pip install "mxnet==1.9.1" "numpy==1.23.5" "gluoncv==0.10.5.post0"
    /tmp/venv-mx/bin/python Tests/SegmentationTests/Fixtures/generate_gluoncv_fixtures.py
"""
import os
import re
import sys

import mxnet as mx
import numpy as np
from gluoncv.model_zoo import deeplabv3, fcn, pspnet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_fill import fill, image, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES, HEIGHT, WIDTH = 5, 72, 56


def our_name(gluon_name):
    """GluonCV structural parameter name -> ours (the table Swift implements in WeightNameMapping)."""
    name = gluon_name
    name = re.sub(r"\.gamma$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    if name.startswith(("conv1.", "bn1.", "layer")):
        return "backbone." + name
    if name.startswith("auxlayer."):
        return "aux_head." + name[len("auxlayer."):]
    name = re.sub(r"^head\.aspp\.concurent\.4\.gap\.", "head.aspp.convs.4.", name)
    name = re.sub(r"^head\.aspp\.concurent\.", "head.aspp.convs.", name)
    return name


tensors, metadata = {}, {}
x = image((1, 3, HEIGHT, WIDTH))
tensors["input"] = x
for key, cls in [("fcn", fcn.FCN), ("psp", pspnet.PSPNet), ("deeplab", deeplabv3.DeepLabV3)]:
    net = cls(CLASSES, backbone="resnet50", aux=True, pretrained_base=False,
              height=HEIGHT, width=WIDTH, crop_size=HEIGHT, base_size=HEIGHT)
    net.initialize()
    net(mx.nd.zeros((1, 3, HEIGHT, WIDTH)))  # materialise deferred shapes
    names, source_names = [], []
    for gluon_name, parameter in net._collect_params_with_prefix().items():
        source_names.append(gluon_name)
        ours = our_name(gluon_name)
        parameter.set_data(mx.nd.array(fill(ours, parameter.shape)))
        names.append(ours)
    outputs = net(mx.nd.array(x))
    tensors[f"gluoncv_{key}/logits"] = outputs[0].asnumpy()
    tensors[f"gluoncv_{key}/aux_logits"] = outputs[1].asnumpy()
    metadata[f"gluoncv_{key}"] = ",".join(sorted(names))
    metadata[f"gluoncv_{key}_source_names"] = ",".join(sorted(source_names))
    if key == "fcn":
        # A real .params file (NDArray list format) of a few tensors for the reader tests.
        subset = {k: v for k, v in net._collect_params_with_prefix().items()
                  if k in ("conv1.0.weight", "conv1.1.gamma", "conv1.1.running_var", "head.block.4.bias")}
        mx.nd.save(os.path.join(HERE, "sample.params"), {k: v.data() for k, v in subset.items()})

metadata["generator"] = f"mxnet {mx.__version__}"
path = os.path.join(HERE, "gluoncv_networks.safetensors")
write_safetensors(path, tensors, metadata)
print(f"wrote {path} ({os.path.getsize(path)} bytes) and sample.params with mxnet {mx.__version__}")
