#!/usr/bin/env python3
"""Side-by-side timing of swift-segmentation, PyTorch and MXNet/GluonCV on
this machine, for the tables of Docs/performance.md.

Runs every implementation on every head in turn, for --rounds interleaved
rounds (A B C A B C ...: this machine's speed drifts, so only a comparison
made in one sitting means anything), each a median of --runs timed runs,
and prints a markdown table with the median of the round medians, the ratio
of ours to the fastest peer, and each one's peak RSS.

    python3 Scripts/compare_peers.py --mode predict --size 480 \\
        --torch /work/venv-torch/bin/python --mxnet /work/venv-mxnet/bin/python
    python3 Scripts/compare_peers.py --mode train --size 240 --batch 2 ...

Our binary is .build/release/segment (`swift build -c release --product
segment`); the peers are Scripts/bench_pytorch.py and Scripts/bench_mxnet.py
in their own venvs (see each script's docstring). --extra-ours NAME=VAR=VALUE
adds a row of ours run with an environment variable, e.g.
fast-training=SEGMENTATION_FAST_CONV=training.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)

parser = argparse.ArgumentParser()
parser.add_argument("--mode", choices=["predict", "train"], default="predict")
parser.add_argument("--size", type=int, default=480, help="image side (predict) or crop (train)")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--heads", default="fcn,psp,deeplab")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--torch", default="/work/venv-torch/bin/python")
parser.add_argument("--mxnet", default="/work/venv-mxnet/bin/python")
parser.add_argument("--segment", default=os.path.join(root, ".build/release/segment"))
parser.add_argument("--extra-ours", action="append", default=[], metavar="NAME=VAR=VALUE")
args = parser.parse_args()


def ours(head, environment=None):
    if args.mode == "predict":
        command = [args.segment, "bench", "predict", "--algorithm", head, "--size", str(args.size),
                   "--batch", str(args.batch), "--runs", str(args.runs), "--json"]
    else:
        command = [args.segment, "bench", "model", "--algorithm", head, "--crop", str(args.size),
                   "--batch", str(args.batch), "--train", "--runs", str(args.runs), "--json"]
    return command, environment


def peer(python, script, head):
    return [python, os.path.join(here, script), "--algorithm", head, "--crop", str(args.size),
            "--batch", str(args.batch), "--runs", str(args.runs),
            "--predict" if args.mode == "predict" else "--train"], None


implementations = [("ours", lambda head: ours(head))]
for extra in args.extra_ours:
    name, variable, value = extra.split("=", 2)
    implementations.append((f"ours, {name}", lambda head, v=variable, x=value: ours(head, {v: x})))
implementations += [
    ("PyTorch", lambda head: peer(args.torch, "bench_pytorch.py", head)),
    ("MXNet", lambda head: peer(args.mxnet, "bench_mxnet.py", head)),
]

results = {}  # (head, name) -> [(median_ms, peak_rss_mib)]
for round_index in range(args.rounds):
    for head in args.heads.split(","):
        for name, make in implementations:
            command, environment = make(head)
            env = dict(os.environ, **(environment or {}))
            output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
            result = json.loads(output)
            # predict: per image (ours reports per image already); train: per step
            ms = result.get("median_ms_per_image", result["median_ms"]) if args.mode == "predict" else result["median_ms"]
            results.setdefault((head, name), []).append((ms, result.get("peak_rss_mib", float("nan"))))
            print(f"round {round_index + 1} {head} {name}: {ms:.0f} ms, {result.get('peak_rss_mib', 0):.0f} MiB",
                  file=sys.stderr, flush=True)

print(f"| head | implementation | median ms ({args.rounds} rounds of {args.runs}) | round medians | ours ÷ fastest peer | peak RSS MiB |")
print("|---|---|---:|---|---:|---:|")
for head in args.heads.split(","):
    medians = {name: statistics.median(ms for ms, _ in results[(head, name)]) for name, _ in implementations}
    fastest_peer = min(medians["PyTorch"], medians["MXNet"])
    for name, _ in implementations:
        runs = results[(head, name)]
        ratio = f"{medians[name] / fastest_peer:.2f}" if name.startswith("ours") else ""
        print(f"| {head} | {name} | {medians[name]:.0f} | {', '.join(f'{ms:.0f}' for ms, _ in runs)} | {ratio} | "
              f"{max(rss for _, rss in runs):.0f} |")
