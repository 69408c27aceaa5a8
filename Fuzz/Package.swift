// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets for every reader of untrusted bytes in Segmentation
// (Docs/fuzzing.md). Built and run by `make fuzz` from the repository root:
//
//     swift build --package-path Fuzz -c release \
//         -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
//
// so the Segmentation library and its C shims are instrumented as well: libFuzzer
// sees coverage inside the readers, AddressSanitizer checks their memory.
//
// A separate package, so that the main package keeps no unsafe flags: the
// one here (`-use-ld=lld`) is allowed because this package is only ever a
// root. SwiftPM links an executable target with `--defsym main=<module>_main`;
// each target's main.swift therefore calls libFuzzer's `LLVMFuzzerRunDriver`
// (FuzzSupport) instead of relying on libFuzzer's own `main`. ld.gold stops
// with an internal error on that link; lld links it.

// MARK: - Targets: one per reader (name, what it feeds)

let readers = [
    "FuzzJPEG",             // ImageCodec.decodeImage on JPEG bytes (CImageCodec → libjpeg)
    "FuzzPNG",              // ImageCodec.decodeImage and decodeAnnotation on PNG bytes (CImageCodec → libpng)
    "FuzzPickle",           // PyTorchStateDict.read: legacy .pth, i.e. the restricted unpickler
    "FuzzPthZip",           // PyTorchStateDict.read: zip .pth (libarchive zip reader + unpickler)
    "FuzzMXNetParams",      // MXNetParams.read(data:file:)
    "FuzzSafeTensors",      // SafeTensorsFile(data:file:)
    "FuzzRecordIO",         // RecordIO.records(in:file:) and ProbabilityRecord.decode
    "FuzzManifest",         // AugmentedManifest.parse
    "FuzzLabelMap",         // LabelMap.parse(_:file:)
    "FuzzHyperparameters",  // TrainingConfiguration.parse(json:file:)
    "FuzzModelJSON",        // model.json: ModelDirectory.ModelDescription's Decodable
    "FuzzMediaTypes",       // PredictionFormat(accept:), PredictionFormat(contentType:), mediaType(_:)
    "FuzzTarGz",            // ModelDirectory.read on a model.tar.gz (libarchive tar.gz reader)
]

// MARK: - Package

let package = Package(
    name: "SegmentationFuzz",
    dependencies: [
        .package(name: "Segmentation", path: ".."),
    ],
    targets: [
        // libFuzzer's LLVMFuzzerRunDriver, declared for Swift.
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .target(
            name: "FuzzSupport", dependencies: ["CFuzzerDriver"], path: "Sources/FuzzSupport"),
    ] + readers.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzSupport", .product(name: "Segmentation", package: "Segmentation")],
            path: "Sources/\(name)",
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])])
    }
)
