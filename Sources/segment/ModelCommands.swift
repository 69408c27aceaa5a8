import ArgumentParser
import Foundation
import Segmentation

extension SegmentationAlgorithm: ExpressibleByArgument {}
extension ResNetDepth: ExpressibleByArgument {}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a torchvision FCN/DeepLabV3 checkpoint (.pth) or a GluonCV FCN/PSP/DeepLab .params file into a model directory.",
        discussion: """
            The architecture (algorithm, backbone depth, stem, class count, aux head) is read from the file; \
            the options below, when given, are checked against it. The directory receives model.json, \
            hyperparams.json and model_best.safetensors, usable by segment predict, evaluate, serve and train --model.
            """)

    @Argument(help: "The checkpoint: .pth (zip or legacy), .params, or .safetensors.", completion: .file())
    var file: String

    @Option(name: .shortAndLong, help: "The model directory to write.")
    var output: String

    @Option(help: "Expected algorithm (fcn, psp, deeplab).")
    var algorithm: SegmentationAlgorithm?

    @Option(help: "Expected backbone (resnet-50, resnet-101).")
    var backbone: ResNetDepth?

    @Option(name: .customLong("num-classes"), help: "Expected number of classes.")
    var numClasses: Int?

    func run() throws {
        let url = URL(fileURLWithPath: file)
        let (model, source, format) = try ModelImporter.importModel(
            from: url, expecting: .init(algorithm: algorithm, backbone: backbone, classCount: numClasses))
        let origin = "imported from \(source.rawValue) \(format.rawValue) file \(url.lastPathComponent)"
        let c = model.configuration
        try ModelDirectory.write(model, to: URL(fileURLWithPath: output), hyperparameters: [
            "algorithm": c.algorithm.rawValue, "backbone": c.backbone.rawValue, "num_classes": "\(c.classCount)",
        ], origin: origin)
        print("\(origin) → \(output)")
        print(model.summary)
    }
}

struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model directory's architecture and parameter counts.")

    @Argument(help: "A model directory (from segment train or segment import).", completion: .directory)
    var model: String

    func run() throws {
        let loaded = try ModelDirectory.read(URL(fileURLWithPath: model))
        print("model: \(model)")
        print(loaded.summary)
    }
}

struct Pretrained: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find (or download and verify) the ImageNet backbone weights that use_pretrained_model=True loads.",
        discussion: """
            Looks for --pretrained-weights FILE, else a known file in the cache directory \
            ($SEGMENTATION_CACHE, default ~/.cache/swift-segmentation): resnet50_v1s-25a187fa.params / \
            resnet101_v1s-bd93a83c.params (GluonCV, deep stem) or resnet50-0676ba61.pth / resnet101-63fe2227.pth \
            (torchvision, standard stem), checked against the hash in the name; else downloads the GluonCV file. \
            Run it once on a connected machine to fill the cache, then copy the cache to offline machines.
            """)

    @Option(help: "resnet-50 or resnet-101.")
    var backbone: ResNetDepth = .resnet50

    @Option(name: .customLong("pretrained-weights"), help: "Use this file instead of the cache.", completion: .file())
    var pretrainedWeights: String?

    @Option(help: "Cache directory (default: $SEGMENTATION_CACHE or ~/.cache/swift-segmentation).", completion: .directory)
    var cache: String?

    @Flag(help: "Never download; only look.")
    var noDownload = false

    func run() throws {
        let directory = cache.map { URL(fileURLWithPath: $0) } ?? PretrainedBackbone.defaultCacheDirectory()
        let url = try PretrainedBackbone.locate(
            depth: backbone, explicitFile: pretrainedWeights.map { URL(fileURLWithPath: $0) }, cacheDirectory: directory,
            allowDownload: !noDownload, log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        let stem = try PretrainedBackbone.stem(of: url, requiring: backbone)
        print("\(url.path): \(backbone.rawValue), \(stem) stem")
    }
}
