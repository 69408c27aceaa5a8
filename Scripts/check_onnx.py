#!/usr/bin/env python3
"""Checks a `segment export` ONNX file against `segment predict` (SPEC section 11).

    python Scripts/check_onnx.py MODEL.onnx IMAGE.png --model MODEL_DIR [--segment PATH]
    python Scripts/check_onnx.py MODEL.onnx IMAGE.png --rec IMAGE.rec
    (add --time N to also time onnxruntime on this image, median of N runs)

Steps, each printed:
1. onnx.checker.check_model(MODEL.onnx, full_check=True), which also runs
   ONNX shape inference over the whole graph.
2. The image is normalized as segment does (RGB/255, then (x - mean)/std,
   mean and std read from the file's metadata_props) and run in onnxruntime
   with the CPU provider; once alone and once as a batch of two (the batch
   axis is dynamic, and both rows must equal the single run).
3. The reference is `segment predict --accept application/x-recordio-protobuf`
   for the same image (run here with --model, or read from --rec): softmax
   probabilities P, float32 [1, C, H, W].

The comparison: softmax discards one constant per pixel, so the logits z
cannot be recovered from P, but z minus its mean over the classes can:
log P - mean_c(log P) = z - mean_c(z) exactly. The script compares these
centred logits, prints max|diff| / max|centred logit| (pass: <= 1e-4) and
the fraction of pixels whose argmax agrees (pass: >= 99.9 %), plus the
largest probability difference for information. Pixels where some
probability is below 1e-30 (where float32 log P loses digits) are left out
of the logit comparison and counted. Use PNG images: a JPEG may decode
differently in Pillow and in segment's libjpeg.

Needs: onnx, onnxruntime, numpy, Pillow (a venv outside the repository:
python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install onnx onnxruntime numpy pillow).
Exits non-zero when a check fails.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

RECORDIO_MAGIC = 0xCED7230A


# MARK: - RecordIO + the SageMaker Record protobuf, read by hand (no mxnet or sagemaker needed)

def varint(buffer, position):
    result, shift = 0, 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def fields(buffer):
    """(field number, wire type, value) for each field of one protobuf message."""
    position = 0
    while position < len(buffer):
        key, position = varint(buffer, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = varint(buffer, position)
        elif wire == 1:
            value, position = buffer[position:position + 8], position + 8
        elif wire == 2:
            length, position = varint(buffer, position)
            value, position = buffer[position:position + length], position + length
        elif wire == 5:
            value, position = buffer[position:position + 4], position + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def read_records(path):
    """The payloads of an MXNet RecordIO file (uint32 magic, uint32 length with cflag, payload, pad to 4)."""
    data = open(path, "rb").read()
    position, payloads = 0, []
    while position < len(data):
        magic, header = struct.unpack_from("<II", data, position)
        assert magic == RECORDIO_MAGIC, f"{path}: bad RecordIO magic at byte {position}"
        length, cflag = header & ((1 << 29) - 1), header >> 29
        assert cflag == 0, f"{path}: split records are not expected"
        payloads.append(data[position + 8:position + 8 + length])
        position += 8 + (length + 3) // 4 * 4
    return payloads


def probabilities_from_record(payload):
    """features["target"] (Float32Tensor values) reshaped by features["shape"] (Int32Tensor values)."""
    features = {}
    for number, _, entry in fields(payload):
        if number != 1:  # Record.features
            continue
        key, value = None, None
        for n, _, v in fields(entry):
            if n == 1:
                key = v.decode()
            elif n == 2:
                value = v
        features[key] = value

    def tensor_values(value, tensor_field, dtype):
        for n, _, tensor in fields(value):
            if n == tensor_field:
                for m, wire, v in fields(tensor):
                    if m == 1 and wire == 2:  # packed values
                        return np.frombuffer(v, dtype=dtype) if dtype == "<f4" else decode_varints(v)
        raise ValueError("tensor values missing")

    shape = [int(s) for s in tensor_values(features["shape"], 7, "int32")]
    values = tensor_values(features["target"], 2, "<f4")
    return values.astype(np.float32).reshape(shape)


def decode_varints(buffer):
    values, position = [], 0
    while position < len(buffer):
        value, position = varint(buffer, position)
        values.append(value)
    return values


# MARK: - The check

def normalized(image_path, metadata):
    mean = np.array([float(v) for v in metadata.get("normalization_mean", "0.485,0.456,0.406").split(",")], np.float32)
    std = np.array([float(v) for v in metadata.get("normalization_std", "0.229,0.224,0.225").split(",")], np.float32)
    rgb = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)  # H, W, 3
    # As segment's normalize(): v * (1 / (255 std)) - mean / std, in float32.
    scale = (np.float32(1) / (np.float32(255) * std)).astype(np.float32)
    shift = (-mean / std).astype(np.float32)
    x = rgb * scale + shift
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def reference_probabilities(arguments, image_path):
    if arguments.rec:
        return probabilities_from_record(read_records(arguments.rec)[0])
    with tempfile.TemporaryDirectory() as directory:
        command = [arguments.segment, "predict", "--model", arguments.model, "--accept",
                   "application/x-recordio-protobuf", "--output", directory, image_path]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        name = os.path.splitext(os.path.basename(image_path))[0]
        return probabilities_from_record(read_records(os.path.join(directory, name + ".rec"))[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx_file")
    parser.add_argument("image")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model directory or model.tar.gz: run segment predict on the image")
    source.add_argument("--rec", help="a .rec file from segment predict for this image")
    parser.add_argument("--segment", default=".build/release/segment", help="the segment binary")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="also time onnxruntime: median of N runs")
    arguments = parser.parse_args()

    onnx.checker.check_model(arguments.onnx_file, full_check=True)
    model = onnx.load(arguments.onnx_file)
    metadata = {p.key: p.value for p in model.metadata_props}
    print(f"{arguments.onnx_file}: onnx.checker.check_model(full_check=True) passed "
          f"(onnx {onnx.__version__}, opset {model.opset_import[0].version}, IR {model.ir_version}, "
          f"{metadata.get('algorithm', '?')} {metadata.get('backbone', '?')}, {len(model.graph.node)} nodes)")

    x = normalized(arguments.image, metadata)
    session = ort.InferenceSession(arguments.onnx_file, providers=["CPUExecutionProvider"])
    declared = session.get_inputs()[0].shape
    (logits,) = session.run(["logits"], {"image": x})
    (pair,) = session.run(["logits"], {"image": np.concatenate([x, x])})
    print(f"onnxruntime {ort.__version__} CPU: image {list(x.shape)} (input declared {declared}) -> logits {list(logits.shape)}")
    batch_difference = float(np.abs(pair - np.concatenate([logits, logits])).max())
    batch_ok = batch_difference <= 1e-4 * float(np.abs(logits).max())
    print(f"batch of 2: both rows equal the single run within {batch_difference:.2e}")

    probabilities = reference_probabilities(arguments, arguments.image)
    assert probabilities.shape == logits.shape, f"segment predict gave {probabilities.shape}, onnxruntime {logits.shape}"
    z = logits[0].astype(np.float64)
    p = probabilities[0].astype(np.float64)
    usable = (p >= 1e-30).all(axis=0)
    centred_onnx = z - z.mean(axis=0)
    log_p = np.log(np.where(p > 0, p, 1.0))
    centred_segment = log_p - log_p.mean(axis=0)
    difference = np.abs(centred_onnx - centred_segment)[:, usable]
    scale = float(np.abs(centred_onnx).max())
    relative = float(difference.max()) / scale if difference.size else float("nan")
    agreement = float((z.argmax(axis=0) == p.argmax(axis=0)).mean())
    present = len(np.unique(p.argmax(axis=0)))
    softmax = np.exp(z - z.max(axis=0))
    softmax /= softmax.sum(axis=0)
    print(f"vs segment predict: centred logits max|diff| {difference.max():.3e} / max|logit| {scale:.3f} = "
          f"{relative:.2e} (pass <= 1e-4; {int((~usable).sum())} of {usable.size} pixels left out), "
          f"argmax equal on {agreement:.4%} of pixels (pass >= 99.9%; {present} classes in the mask), "
          f"probabilities max|diff| {np.abs(softmax - p).max():.2e}")

    if arguments.time:
        session.run(["logits"], {"image": x})
        times = []
        for _ in range(arguments.time):
            start = time.perf_counter()
            session.run(["logits"], {"image": x})
            times.append((time.perf_counter() - start) * 1000)
        print(f"onnxruntime latency {list(x.shape)}: median {np.median(times):.1f} ms of {arguments.time} runs "
              f"(min {min(times):.1f}, max {max(times):.1f})")

    ok = relative <= 1e-4 and agreement >= 0.999 and batch_ok
    print("ok" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
