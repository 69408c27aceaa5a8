// swift-tools-version: 6.0
import PackageDescription

// MARK: - System libraries (Debian packages, found through pkg-config)

let systemLibraries: [Target] = [
    .systemLibrary(
        name: "COpenBLAS", path: "Modules/COpenBLAS", pkgConfig: "openblas",
        providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(
        name: "CPNG", path: "Modules/CPNG", pkgConfig: "libpng",
        providers: [.apt(["libpng-dev"])]),
    .systemLibrary(
        name: "CJPEG", path: "Modules/CJPEG", pkgConfig: "libjpeg",
        providers: [.apt(["libjpeg-dev"])]),
    .systemLibrary(
        name: "CArchive", path: "Modules/CArchive", pkgConfig: "libarchive",
        providers: [.apt(["libarchive-dev"])]),
    // Open MPI, for data-parallel training (SPEC §10); only the CLI links it.
    .systemLibrary(
        name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi-c",
        providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
]

// MARK: - Package

let package = Package(
    name: "Segmentation",
    products: [
        .library(name: "Segmentation", targets: ["Segmentation"]),
        .library(name: "SegmentationServer", targets: ["SegmentationServer"]),
        .executable(name: "segment", targets: ["segment"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: systemLibraries + [
        .target(
            name: "CImageCodec", dependencies: ["CJPEG", "CPNG"],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        .target(
            name: "Segmentation",
            dependencies: [
                "COpenBLAS",
                "CArchive",
                "CImageCodec",
                .product(name: "RealModule", package: "swift-numerics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        .target(
            name: "SegmentationServer",
            dependencies: [
                "Segmentation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The Open MPI communicator; the Segmentation library itself never links MPI.
        .target(
            name: "SegmentationMPI",
            dependencies: ["Segmentation", "CMPI"]),
        .executableTarget(
            name: "segment",
            dependencies: [
                "Segmentation",
                "SegmentationServer",
                "SegmentationMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The README's library example; ExampleTests builds and runs it.
        .executableTarget(
            name: "SegmentationExample",
            dependencies: ["Segmentation"],
            path: "Examples/QuickStart"),
        .target(
            name: "SegmentationTestSupport",
            dependencies: ["Segmentation"],
            path: "Sources/SegmentationTestSupport"),
        .testTarget(
            name: "SegmentationTests",
            dependencies: [
                "Segmentation", "SegmentationServer", "SegmentationTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]),
    ]
)
