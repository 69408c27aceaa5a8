import ArgumentParser
import Foundation
import Segmentation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model's inference network as ONNX, for onnxruntime, TensorRT, OpenVINO and other runtimes.",
        discussion: """
            The graph takes 'image', float32 [N, 3, H, W] normalized as the model was trained (RGB/255, then \
            (x − mean)/std; the caller normalizes), and returns 'logits', float32 [N, C, H, W] at the input size. \
            Batch is dynamic. H and W are dynamic for FCN and DeepLabV3 unless --size fixes them; PSP needs --size, \
            because its bin pools depend on the feature size. BN is folded into the convolutions and the aux head \
            is left out. The file is written atomically. See Docs/export.md.
            """)

    @Option(help: "A model directory or model.tar.gz.", completion: .file())
    var model: String

    @Option(help: "The export format: onnx.")
    var format = ExportFormat.onnx.rawValue

    @Option(name: .shortAndLong, help: "The file to write, e.g. model.onnx.", completion: .file())
    var output: String

    @Option(help: "Fix the input's height and width, as H,W (required for psp).")
    var size: String?

    @Option(help: "ONNX operator set (\(ONNXExporter.supportedOpsets.lowerBound)…\(ONNXExporter.supportedOpsets.upperBound)).")
    var opset = ONNXExporter.defaultOpset

    func run() throws {
        // Errors thrown here (not ValidationError) print as one line.
        _ = try ExportFormat(parsing: format)
        let options = ONNXExportOptions(opset: opset, inputSize: try size.map(ImageSize.init(parsing:)))
        try options.validate()
        let loaded = try ModelDirectory.read(URL(fileURLWithPath: model))
        let export = try ONNXExporter.export(loaded, options: options)
        let files = try export.write(to: URL(fileURLWithPath: output))
        let c = loaded.configuration
        let bytes = files.reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0)
        }
        print("\(c.algorithm.rawValue), \(c.backbone.rawValue) (\(c.stem.rawValue) stem), \(c.classCount) classes → "
              + ([output] + files.dropFirst().map(\.lastPathComponent)).joined(separator: " + ")
              + String(format: " (ONNX opset %d, %.1f MB)", export.opset, Double(bytes) / 1e6))
        print("input:  \(ONNXExporter.inputName)  float32 \(shape(export.inputShape))   "
              + "RGB/255, mean \(loaded.normalization.mean), std \(loaded.normalization.std)")
        print("output: \(ONNXExporter.outputName) float32 \(shape(export.outputShape))")
        print("parameters: \(export.parameterCount.formatted()) in \(export.initializerCount) initializers "
              + "(BN folded; the model has \(loaded.parameters.trainableParameterCount.formatted()) trainable), \(export.nodeCount) nodes")
    }

    private func shape(_ dimensions: [ONNXDimension]) -> String {
        "[" + dimensions.map(\.description).joined(separator: ", ") + "]"
    }
}
