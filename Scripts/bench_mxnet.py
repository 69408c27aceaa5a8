#!/usr/bin/env python3
"""The MXNet/GluonCV CPU reference for `segment bench model`: the framework and
model classes SageMaker's semantic-segmentation algorithm is built on, the same
step on the same machine, for the ratio reported in Docs/performance.md.

    python3.11 -m venv /tmp/venv-mx && /tmp/venv-mx/bin/pip install mxnet==1.9.1 gluoncv==0.10.5.post0 numpy==1.23.5
    /tmp/venv-mx/bin/python Scripts/bench_mxnet.py --algorithm fcn --crop 240 --batch 2 --train

(mxnet 1.9.1's PyPI wheel is built with oneDNN (MKLDNN) and needs numpy < 1.24;
gluoncv's own dependencies, pandas, scipy, matplotlib, opencv-python, yacs,
autocfg, portalocker and so on, come along with it.)

The networks are GluonCV's own classes, gluoncv.model_zoo.FCN / PSPNet /
DeepLabV3, on its dilated (output stride 8) resnet50_v1s / resnet101_v1s: the
deep 3x3 stem, so compare with `segment bench model --stem deep`. Weights are
random (Xavier; nothing is downloaded: pretrained_base=False). The net is
hybridized with static_alloc and static_shape, as a user of MXNet would; for
--predict (and the plain inference pass) also with backend="MKLDNN", which
hands the graph to oneDNN's fusion passes (convolution + BatchNorm + ReLU +
residual add become one _sg_mkldnn_conv; MXNET_SUBGRAPH_BACKEND=NONE turns
that off). Training cannot use that backend (it folds BatchNorm into the
weights), so it runs the plain static graph on oneDNN's kernels. GluonCV fixes every
upsampling size when the model is built (the final bilinear resize to
crop_size, and PSP's pyramid / DeepLab's image-pooling resize to crop_size/8),
so the model is built with crop_size=--crop, and for psp and deeplab --crop
must be a multiple of 8 (otherwise crop_size // 8 is not the feature map's size).

A training step is: forward in training mode under autograd.record() with the
aux head, loss = CE(main) + 0.5 CE(aux) with ignore label 255 (GluonCV's
MixSoftmaxCrossEntropyLoss), backward, SGD (momentum 0.9, weight decay 1e-4,
lr 0.001; GluonCV sets lr_mult 10 on the heads) update, waitall. Threads
default to the core count: OMP_NUM_THREADS is set from --threads before mxnet
is imported (MXNET_CPU_WORKER_NTHREADS stays 1, so one operator runs at a time
on all OpenMP threads, as MXNet recommends). Prints one JSON object.

--predict times what `segment bench predict --stem deep` times: a forward
outside autograd (BatchNorm on its running statistics, dropout off) without the
aux head, whose logits GluonCV already resizes to the input size (bilinear,
align_corners), and the per-pixel argmax, per image:

    /tmp/venv-mx/bin/python Scripts/bench_mxnet.py --algorithm psp --crop 480 --batch 1 --predict
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time
import warnings

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
if args.algorithm != "fcn" and args.crop % 8:
    parser.error("--crop must be a multiple of 8 for psp and deeplab (GluonCV sizes their pooled branches' "
                 "upsampling as crop_size // 8)")

# MXNet reads these when it loads, so they are set before the import.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MXNET_CPU_WORKER_NTHREADS"] = "1"

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon, nd  # noqa: E402
from gluoncv.loss import MixSoftmaxCrossEntropyLoss  # noqa: E402
from gluoncv.model_zoo import FCN, PSPNet, DeepLabV3  # noqa: E402

depth = args.backbone.split("-")[1]
aux = not args.predict
make = {"fcn": FCN, "deeplab": DeepLabV3, "psp": PSPNet}[args.algorithm]
mx.random.seed(0)
# PSPNet's constructor prints to stdout; keep stdout for the JSON.
with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    net = make(args.num_classes, backbone=f"resnet{depth}", aux=aux, ctx=mx.cpu(), pretrained_base=False,
               base_size=args.crop, crop_size=args.crop)
    # The heads were initialized in the constructor; re-initialize everything
    # (BatchNorm's gamma/beta/running stats keep their own ones/zeros initializers).
    net.initialize(mx.init.Xavier(), ctx=mx.cpu(), force_reinit=True)
# MXNet 1.9's Gluon fuses for oneDNN only when asked for the backend (plain
# hybridize, or the MXNET_SUBGRAPH_BACKEND variable, leaves the CachedOp
# graph unfused). The MKLDNN backend folds BatchNorm into the convolutions,
# which is for inference only, so training runs the plain static graph.
# MXNET_SUBGRAPH_BACKEND=NONE turns the fusion off for --predict too.
fuse = not args.train and os.environ.get("MXNET_SUBGRAPH_BACKEND", "").upper() != "NONE"
net.hybridize(static_alloc=True, static_shape=True, **({"backend": "MKLDNN"} if fuse else {}))

images = nd.random.uniform(-2, 2, shape=(args.batch, 3, args.crop, args.crop))
labels = nd.random.randint(0, args.num_classes, shape=(args.batch, args.crop, args.crop)).astype("float32")
labels = nd.where(nd.random.uniform(shape=labels.shape) < 0.05, nd.full(labels.shape, 255), labels)
# Imperative: GluonCV's loss reads pred.dtype, which a hybridized (Symbol) call lacks.
loss_fn = MixSoftmaxCrossEntropyLoss(aux=True, aux_weight=0.5, ignore_label=255)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1e-3, "momentum": 0.9, "wd": 1e-4})


def step():
    if args.train:
        with autograd.record(train_mode=True):
            main, aux_out = net(images)
            loss = loss_fn(main, aux_out, labels)
        loss.backward()
        trainer.step(args.batch)
    elif args.predict:
        nd.argmax(net(images)[0], axis=1).wait_to_read()
    else:
        net(images)
    mx.nd.waitall()


for _ in range(args.warmup):
    step()
samples = []
for _ in range(args.runs):
    start = time.perf_counter()
    step()
    samples.append((time.perf_counter() - start) * 1000)
print(json.dumps({
    "framework": f"mxnet {mx.__version__}", "algorithm": args.algorithm, "backbone": args.backbone,
    "stem": "deep", "crop": args.crop, "batch": args.batch, "pass": "train" if args.train else ("predict" if args.predict else "inference"),
    "threads": args.threads, "median_ms": statistics.median(samples),
    "median_ms_per_image": statistics.median(samples) / args.batch,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}, indent=2))
