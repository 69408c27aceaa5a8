#!/usr/bin/env python3
"""Writes sdk_records.rec: two recordio-protobuf records made by the tools a
SageMaker user has, the SageMaker Python SDK's record_pb2.Record and MXNet's
recordio writer, so RecordIOTests can check that our reader agrees with them.

    /work/venv-mx/bin/python generate_recordio_fixture.py   # mxnet 1.9.1, sagemaker<3, numpy<1.24

Record k (k = 0, 1) has features["shape"] = Int32Tensor [1, C, H, W] with
(C, H, W) = (2, 3, 4) and (3, 1, 5), and features["target"] = Float32Tensor
values v[i] = (i + 1) / 64 + k, a closed form the test recomputes.
"""
import os

from mxnet import recordio
from sagemaker.amazon.record_pb2 import Record

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_records.rec")
writer = recordio.MXRecordIO(path, "w")
for k, (c, h, w) in enumerate([(2, 3, 4), (3, 1, 5)]):
    record = Record()
    record.features["shape"].int32_tensor.values.extend([1, c, h, w])
    record.features["target"].float32_tensor.values.extend([(i + 1) / 64 + k for i in range(c * h * w)])
    writer.write(record.SerializeToString())
writer.close()
print("wrote", path, os.path.getsize(path), "bytes")
