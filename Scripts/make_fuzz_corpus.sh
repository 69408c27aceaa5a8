#!/usr/bin/env bash
# Regenerates the seed corpora in Fuzz/Corpus/<target>/ (Docs/fuzzing.md):
# small valid inputs for each fuzz target, copied from the test fixtures or
# written here. Deterministic (tar and gzip get fixed times and owners), so a
# re-run leaves `git status` clean. Needs bash, tar, gzip and python3 (the
# standard library only). The corpus libFuzzer grows while it runs goes to
# Fuzz/.build/corpus, never here.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=Tests/SegmentationTests/Fixtures
out=Fuzz/Corpus
rm -rf "$out"
for target in FuzzJPEG FuzzPNG FuzzPickle FuzzPthZip FuzzMXNetParams FuzzSafeTensors FuzzRecordIO FuzzManifest \
              FuzzLabelMap FuzzHyperparameters FuzzModelJSON FuzzMediaTypes FuzzTarGz; do
    mkdir -p "$out/$target"
done

# Images: every JPEG and PNG the codec tests use (a few KB in all).
cp "$fixtures"/images/*.jpg "$out/FuzzJPEG/"
cp "$fixtures"/images/*.png "$out/FuzzPNG/"

# PyTorch: legacy pickles for the unpickler (sample and the two refused
# "evil" pickles, which reach the global allow-list), zip checkpoints for the
# zip reader.
cp "$fixtures"/sample_legacy.pth "$fixtures"/evil_builtins_eval.pth "$fixtures"/evil_os_system.pth "$out/FuzzPickle/"
cp "$fixtures"/sample_zip.pth "$fixtures"/sample_checkpoint.pth "$out/FuzzPthZip/"

# Weight files.
cp "$fixtures"/sample.params "$out/FuzzMXNetParams/"
cp "$fixtures"/sample_expected.safetensors "$fixtures"/optimizers.safetensors "$out/FuzzSafeTensors/"

# RecordIO: the SageMaker SDK's records, and one probability answer as
# `segment serve` writes it ([1, 2, 2, 2] probabilities), built here from the
# wire format of Protos/record.proto.
cp "$fixtures"/sdk_records.rec "$out/FuzzRecordIO/"
python3 - "$out/FuzzRecordIO/probabilities.rec" <<'PY'
import struct, sys

def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)

def field(number, payload):  # a length-delimited field
    return varint(number << 3 | 2) + varint(len(payload)) + payload

def entry(key, value):  # one map<string, Value> entry of Record.features
    return field(1, field(1, key.encode()) + field(2, value))

values = [0.9, 0.2, 0.4, 0.7, 0.1, 0.8, 0.6, 0.3]
target = field(2, field(1, struct.pack("<8f", *values)))  # Value.float32_tensor.values
shape = field(7, field(1, b"".join(varint(d) for d in (1, 2, 2, 2))))  # Value.int32_tensor.values
record = entry("target", target) + entry("shape", shape)
framed = struct.pack("<II", 0xCED7230A, len(record)) + record + b"\0" * (-len(record) % 4)
open(sys.argv[1], "wb").write(framed)
PY

# Augmented manifests.
cat > "$out/FuzzManifest/default-names.manifest" <<'TXT'
{"source-ref": "s3://bucket/images/a.jpg", "label-ref": "s3://bucket/labels/a.png", "label-ref-metadata": {"class-map": {"0": "bg"}}}
{"source-ref": "images/b.jpg", "label-ref": "file:///data/labels/b.png"}

{"source-ref": "/data/images/c.png", "label-ref": "labels/c.png", "note": 3}
TXT
cat > "$out/FuzzManifest/two-refs.manifest" <<'TXT'
{"source-ref": "img/a.jpg", "label-ref": "ann/a.png", "other-ref": "x"}
TXT

# Label maps.
printf '{"scale": 3}' > "$out/FuzzLabelMap/scale.json"
printf '{"map": {"0": 0, "1": "128", "2": 200, " 3 ": "64"}}' > "$out/FuzzLabelMap/map.json"

# hyperparameters.json: SageMaker's all-string form and native JSON values.
cat > "$out/FuzzHyperparameters/sagemaker.json" <<'TXT'
{"num_classes": "21", "num_training_samples": "1464", "backbone": "resnet-50", "algorithm": "fcn",
 "use_pretrained_model": "True", "crop_size": "241", "epochs": "10", "learning_rate": "0.001",
 "optimizer": "sgd", "lr_scheduler": "step", "lr_scheduler_step": "3, 6", "mini_batch_size": "16"}
TXT
cat > "$out/FuzzHyperparameters/native.json" <<'TXT'
{"num_classes": 2, "num_training_samples": 10, "algorithm": "deeplab", "backbone": "resnet-101",
 "use_pretrained_model": false, "momentum": 0.9, "weight_decay": 0.0001, "early_stopping": true}
TXT

# model.json as `segment train` and `segment import` write it.
model_json='{
  "crop_size" : 240,
  "format_version" : 1,
  "network" : {
    "algorithm" : "psp",
    "aux" : true,
    "backbone" : "resnet-50",
    "num_classes" : 21,
    "stem" : "deep"
  },
  "normalization" : {
    "mean" : [0.485, 0.456, 0.406],
    "std" : [0.229, 0.224, 0.225]
  },
  "origin" : "trained by segment train"
}'
printf '%s' "$model_json" > "$out/FuzzModelJSON/model.json"
printf '{"format_version": 1, "network": {"algorithm": "fcn", "backbone": "resnet-101", "stem": "standard", "num_classes": 2, "aux": false}, "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]}, "origin": "imported"}' \
    > "$out/FuzzModelJSON/imported.json"

# Accept and Content-Type header values.
printf 'image/png' > "$out/FuzzMediaTypes/png"
printf 'application/x-recordio-protobuf; charset=binary' > "$out/FuzzMediaTypes/recordio"
printf 'text/html, application/*;q=0.5, image/png;q=0, */*;q=0.1' > "$out/FuzzMediaTypes/accept-list"
printf 'Application/X-Protobuf ; q=1' > "$out/FuzzMediaTypes/alias"

# model.tar.gz: model.json with the weights of the small sample (they do not
# fit the network, so reading stops at the first missing tensor), and an
# archive with model.json alone.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '{"format_version": 1, "network": {"algorithm": "fcn", "backbone": "resnet-50", "stem": "deep", "num_classes": 2, "aux": false}, "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "origin": "fuzz seed"}' \
    > "$scratch/model.json"
printf '{"num_classes": "2", "num_training_samples": "4"}' > "$scratch/hyperparams.json"
cp "$fixtures"/sample_expected.safetensors "$scratch/model_best.safetensors"
tar_gz() {  # tar_gz ARCHIVE FILE...: a reproducible gzip-compressed tar
    local archive=$1; shift
    tar --create --format=pax --pax-option=delete=atime,delete=ctime --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --sort=name -C "$scratch" "$@" | gzip -n -9 > "$archive"
}
tar_gz "$out/FuzzTarGz/model.tar.gz" model.json hyperparams.json model_best.safetensors
tar_gz "$out/FuzzTarGz/description-only.tar.gz" model.json

echo "wrote $(find "$out" -type f | wc -l) seed files, $(du -sk "$out" | cut -f1) KB, in $out"
