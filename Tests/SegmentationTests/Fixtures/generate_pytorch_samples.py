"""Small PyTorch checkpoints for the weight-reader tests (WeightReaderTests.swift).

Writes into this folder:
    sample_zip.pth                torch.save of an OrderedDict state dict (zip format, torch >= 1.6)
    sample_legacy.pth             the same dict, _use_new_zipfile_serialization=False
    sample_checkpoint.pth         {"model": state_dict, "epoch": 3} (zip format)
    sample_expected.safetensors   the expected values, F32, under the same names
    evil_os_system.pth            a zip in torch's layout whose data.pkl calls os.system
    evil_builtins_eval.pth        a legacy-format file whose main pickle calls builtins.eval

The two hostile files are assembled byte by byte; nothing here ever unpickles
them (and nothing should: loading them with pickle would run their payload).

Run: /work/venv-tv/bin/python Tests/SegmentationTests/Fixtures/generate_pytorch_samples.py
"""
import collections
import json
import os
import struct
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def state_dict():
    """Every storage layout the reader must handle, with exactly representable values."""
    sd = collections.OrderedDict()
    sd["backbone.conv1.weight"] = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3) * 0.125 - 3
    sd["backbone.bn1.weight"] = torch.linspace(0.5, 1.25, 4, dtype=torch.float32)
    sd["backbone.bn1.num_batches_tracked"] = torch.tensor(12345, dtype=torch.int64)  # 0-d int64
    sd["backbone.bn1.running_var"] = torch.tensor([1 / 3, 2.5, 1e-3, 7.0], dtype=torch.float64)
    sd["head.half"] = torch.tensor([0.5, -1.25, 65504.0, 2.0 ** -24], dtype=torch.float16)
    sd["head.bf16"] = torch.tensor([1.0, -0.0078125, 3.0], dtype=torch.bfloat16)
    sd["head.int32"] = torch.tensor([[-7, 8], [9, 2 ** 20]], dtype=torch.int32)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 4
    sd["shared.base"] = base
    sd["shared.transposed"] = base.t()  # strides (1, 6), same storage
    sd["shared.slice"] = base[1:3, 2:5]  # storage_offset 8, strides (6, 1)
    sd["head.param"] = torch.nn.Parameter(torch.tensor([0.25, -4.0, 1024.0]))
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("backbone.bn1", {"version": 2})])
    assert sd["shared.slice"].storage_offset() == 8 and not sd["shared.transposed"].is_contiguous()
    return sd


def expected(sd):
    return {name: t.detach().to(torch.float64).numpy().astype(np.float32) for name, t in sd.items()}


def write_safetensors(path, tensors, metadata):
    """Like fixture_fill.write_safetensors, but keeps 0-d shapes (num_batches_tracked is a scalar)."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.asarray(tensors[name], dtype="<f4", order="C")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        blobs.append(array.tobytes())
    header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# --- hand-assembled pickles (protocol 2) ---------------------------------------

def unicode(text):
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def global_(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def pickle_of(body):
    return b"\x80\x02" + body + b"."


def legacy_preamble():
    magic = 0x1950A86A20F9469CFC6C.to_bytes(10, "little", signed=True)
    sys_info = (b"}(" + unicode("protocol_version") + b"M\xe9\x03" + unicode("little_endian") + b"\x88"
                + unicode("type_sizes") + b"}(" + unicode("short") + b"K\x02" + unicode("int") + b"K\x04"
                + unicode("long") + b"K\x04" + b"uu")
    return pickle_of(b"\x8a\x0a" + magic) + pickle_of(b"M\xe9\x03") + pickle_of(sys_info)


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)


def main():
    sd = state_dict()
    torch.save(sd, os.path.join(HERE, "sample_zip.pth"))
    torch.save(sd, os.path.join(HERE, "sample_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"model": sd, "epoch": 3}, os.path.join(HERE, "sample_checkpoint.pth"))
    write_safetensors(os.path.join(HERE, "sample_expected.safetensors"), expected(sd),
                      {"generator": f"torch {torch.__version__}"})

    # os.system("echo pwned") as the whole data.pkl of a torch-layout zip.
    evil = pickle_of(global_("os", "system") + unicode("echo pwned") + b"\x85R")
    write_zip(os.path.join(HERE, "evil_os_system.pth"),
              [("evil_os_system/data.pkl", evil), ("evil_os_system/byteorder", b"little"),
               ("evil_os_system/version", b"3\n")])

    # A legacy file whose main object is builtins.eval("print('pwned')"), then an empty key list.
    main_object = pickle_of(global_("builtins", "eval") + unicode("print('pwned')") + b"\x85R")
    with open(os.path.join(HERE, "evil_builtins_eval.pth"), "wb") as f:
        f.write(legacy_preamble() + main_object + pickle_of(b"]"))

    for name in ["sample_zip.pth", "sample_legacy.pth", "sample_checkpoint.pth", "sample_expected.safetensors",
                 "evil_os_system.pth", "evil_builtins_eval.pth"]:
        print(f"wrote {name} ({os.path.getsize(os.path.join(HERE, name))} bytes)")
    print(f"with torch {torch.__version__}")


if __name__ == "__main__":
    main()
