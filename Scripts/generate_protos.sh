#!/bin/sh
# Regenerates the Swift code of the committed .proto files:
#   Protos/record.proto -> Sources/Segmentation/IO/Generated/record.pb.swift
#   Protos/onnx.proto   -> Sources/Segmentation/Export/Generated/onnx.pb.swift
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from
# apple/swift-protobuf at the version in Package.swift:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf
#   git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=$PWD/.build/release/protoc-gen-swift
# The output is committed, so neither a build nor CI needs the plugin.
#
# Protos/onnx.proto is the ONNX project's published schema (onnx/onnx.proto,
# proto2, Apache-2.0), copied unchanged; to update it, replace the file with a
# newer release's onnx/onnx.proto and rerun this script.
set -eu
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to the protoc-gen-swift binary}
generate() {  # generate PROTO OUTPUT_DIRECTORY
    mkdir -p "$2"
    protoc --plugin=protoc-gen-swift="$plugin" --proto_path=Protos --swift_out="$2" "$1"
    echo "wrote $2/${1%.proto}.pb.swift"
}
generate record.proto Sources/Segmentation/IO/Generated
generate onnx.proto Sources/Segmentation/Export/Generated
