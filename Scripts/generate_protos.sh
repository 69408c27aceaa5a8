#!/bin/sh
# Regenerates Sources/Segmentation/IO/Generated/record.pb.swift from
# Protos/record.proto. Needs protoc (Debian: protobuf-compiler) and
# protoc-gen-swift built from apple/swift-protobuf at the version in
# Package.swift:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf
#   git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=$PWD/.build/release/protoc-gen-swift
# The output is committed, so neither a build nor CI needs the plugin.
set -eu
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to the protoc-gen-swift binary}
mkdir -p Sources/Segmentation/IO/Generated
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=Protos \
    --swift_out=Sources/Segmentation/IO/Generated record.proto
echo "wrote Sources/Segmentation/IO/Generated/record.pb.swift"
