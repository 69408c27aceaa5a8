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
