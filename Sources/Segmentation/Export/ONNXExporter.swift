import Foundation

/// The inference network as an ONNX model (SPEC §11, Docs/export.md).
///
/// Contract: input `image` float32 [N, 3, H, W], normalized as the model's
/// `normalization` says (SPEC §3; the caller normalizes); output `logits`
/// float32 [N, C, H, W] at the input's size. Batch is dynamic; H and W are
/// dynamic unless an input size is given, which PSP needs (its bin pools
/// depend on the feature size). BN is folded into the convolutions; weights
/// are initializers, stored in a `.data` file beside the model only when
/// they would push it past protobuf's 2 GB limit. The aux head is left out.
public enum ONNXExporter {
    public static let inputName = "image"
    public static let outputName = "logits"
    /// Opsets the graph is written for; every operator used has the same
    /// semantics over this range. 17 is the default (SPEC §11: opset ≥ 17).
    public static let supportedOpsets = 17...21
    public static let defaultOpset = 17

    /// Builds the graph of `model`'s inference forward.
    public static func export(_ model: SegmentationModel, options: ONNXExportOptions = ONNXExportOptions()) throws -> ONNXExport {
        try options.validate()
        let classes = model.configuration.classCount
        var graph = ONNXGraph(parameters: model.parameters, reservedNames: [inputName])
        let image = ONNXValue(name: inputName, channels: 3, height: options.inputSize?.height, width: options.inputSize?.width)
        let logits: ONNXValue
        do {
            logits = try model.network.exportONNX(image, to: &graph)
        } catch ONNXExportError.fixedSizeRequired(let bins, algorithm: nil) {
            throw ONNXExportError.fixedSizeRequired(bins: bins, algorithm: model.configuration.algorithm.rawValue)
        }
        precondition(logits.name == outputName && logits.channels == classes, "the network's last node is not \(outputName)")

        let spatial: [ONNXDimension] = options.inputSize.map { [.fixed($0.height), .fixed($0.width)] } ?? [.named("H"), .named("W")]
        let inputShape: [ONNXDimension] = [.named("N"), .fixed(3)] + spatial
        let outputShape: [ONNXDimension] = [.named("N"), .fixed(classes)] + spatial

        var proto = Onnx_GraphProto()
        let c = model.configuration
        proto.name = "\(c.algorithm.rawValue)_\(c.backbone.rawValue)"
        proto.node = graph.nodes
        proto.initializer = graph.initializers
        proto.input = [valueInfo(inputName, inputShape)]
        proto.output = [valueInfo(outputName, outputShape)]

        var onnx = Onnx_ModelProto()
        onnx.irVersion = irVersion(forOpset: options.opset)
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(options.opset)
        onnx.opsetImport = [opset]
        onnx.producerName = "swift-segmentation"
        onnx.docString = """
            \(c.algorithm.rawValue) on dilated \(c.backbone.rawValue) (\(c.stem.rawValue) stem), \(classes) classes. \
            Input image: float32 [N, 3, H, W], RGB, x = (v/255 − mean)/std with mean \(model.normalization.mean), \
            std \(model.normalization.std). Output logits: float32 [N, \(classes), H, W]; argmax over axis 1 is the class id.
            """
        onnx.metadataProps = [
            ("algorithm", c.algorithm.rawValue), ("backbone", c.backbone.rawValue), ("stem", c.stem.rawValue),
            ("num_classes", "\(classes)"),
            ("normalization_mean", model.normalization.mean.map { "\($0)" }.joined(separator: ",")),
            ("normalization_std", model.normalization.std.map { "\($0)" }.joined(separator: ",")),
        ].map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        onnx.graph = proto
        return ONNXExport(model: onnx, inputShape: inputShape, outputShape: outputShape,
                          externalDataThreshold: options.externalDataThreshold)
    }

    /// The lowest IR version that carries `opset` (onnx/helper.py's table: 17, 18 → 8; 19, 20 → 9; 21 → 10).
    static func irVersion(forOpset opset: Int) -> Int64 {
        switch opset {
        case ...18: return 8
        case 19...20: return 9
        default: return 10
        }
    }

    static func valueInfo(_ name: String, _ dimensions: [ONNXDimension]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dimensions.map { dimension in
            var d = Onnx_TensorShapeProto.Dimension()
            switch dimension {
            case .fixed(let value): d.dimValue = Int64(value)
            case .named(let name): d.dimParam = name
            }
            return d
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }
}

/// How `ONNXExporter` writes the graph.
public struct ONNXExportOptions: Sendable {
    /// ONNX operator set, one of `ONNXExporter.supportedOpsets`.
    public var opset: Int
    /// Fixes the input's height and width (required for PSP); nil leaves them dynamic.
    public var inputSize: ImageSize?
    /// The largest input area accepted, as `Predictor` refuses larger images.
    public var maximumPixels: Int
    /// Initializer bytes above which the weights go to an external `.data`
    /// file: protobuf cannot serialize a message of 2 GB or more.
    public var externalDataThreshold: Int

    public init(
        opset: Int = ONNXExporter.defaultOpset, inputSize: ImageSize? = nil,
        maximumPixels: Int = ImageCodec.defaultMaximumPixels, externalDataThreshold: Int = 2_000_000_000
    ) {
        self.opset = opset
        self.inputSize = inputSize
        self.maximumPixels = maximumPixels
        self.externalDataThreshold = externalDataThreshold
    }

    /// Throws for an opset outside `ONNXExporter.supportedOpsets` or an input size no image can have.
    public func validate() throws {
        guard ONNXExporter.supportedOpsets.contains(opset) else { throw ONNXExportError.unsupportedOpset(opset) }
        if let inputSize { try inputSize.validate(maximumPixels: maximumPixels) }
    }
}

/// One axis of the graph's input or output: a number, or a name left to run time.
public enum ONNXDimension: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case named(String)

    public var description: String {
        switch self {
        case .fixed(let value): return "\(value)"
        case .named(let name): return name
        }
    }
}

/// A height × width, as `--size H,W` gives it.
public struct ImageSize: Sendable, Hashable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    /// Parses "H,W" (also "HxW"); a single number means a square.
    public init(parsing text: String) throws {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "x" || $0 == "×" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...2).contains(parts.count), let height = Int(parts[0]), let width = Int(parts.last!) else {
            throw ONNXExportError.invalidSize(text, reason: "expected H,W (two integers, e.g. 480,480)")
        }
        self.init(height: height, width: width)
    }

    /// Any positive size works: the backbone rounds its strides up (features at ⌈H/8⌉ × ⌈W/8⌉).
    /// The bound is the one `Predictor` applies to images.
    func validate(maximumPixels: Int) throws {
        guard height > 0 && width > 0 else {
            throw ONNXExportError.invalidSize(description, reason: "height and width must be positive")
        }
        let (area, overflow) = height.multipliedReportingOverflow(by: width)
        guard !overflow && area <= maximumPixels else {
            throw ONNXExportError.invalidSize(description, reason: "above the \(maximumPixels)-pixel limit images are refused at")
        }
    }

    public var description: String { "\(height),\(width)" }
}

public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(String)
    case unsupportedOpset(Int)
    case invalidSize(String, reason: String)
    /// An adaptive pool to more than one bin over a dynamic size; `algorithm` is filled in by the exporter.
    case fixedSizeRequired(bins: Int, algorithm: String?)

    public var description: String {
        switch self {
        case .unknownFormat(let format):
            return "unknown export format '\(format)': supported: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))"
        case .unsupportedOpset(let opset):
            return "opset \(opset) is not supported: use \(ONNXExporter.supportedOpsets.lowerBound)…\(ONNXExporter.supportedOpsets.upperBound)"
        case let .invalidSize(size, reason):
            return "invalid input size '\(size)': \(reason)"
        case let .fixedSizeRequired(bins, algorithm):
            return "\(algorithm ?? "this network") needs a fixed input size (--size H,W): its \(bins)×\(bins) bin pool depends on the feature size"
        }
    }
}

/// The formats `segment export` writes.
public enum ExportFormat: String, Sendable, CaseIterable {
    case onnx

    public init(parsing text: String) throws {
        guard let format = ExportFormat(rawValue: text.lowercased()) else { throw ONNXExportError.unknownFormat(text) }
        self = format
    }
}

/// An exported model, ready to write.
public struct ONNXExport: Sendable {
    let model: Onnx_ModelProto
    public let inputShape: [ONNXDimension]
    public let outputShape: [ONNXDimension]
    let externalDataThreshold: Int

    public var opset: Int { Int(model.opsetImport[0].version) }
    public var nodeCount: Int { model.graph.node.count }
    public var initializerCount: Int { model.graph.initializer.count }
    /// Scalars stored in the file: the weights with BN folded in (conv weights,
    /// one bias per folded channel, the classifier's), plus PSP's pooling matrices.
    public var parameterCount: Int {
        model.graph.initializer.reduce(0) { $0 + Int($1.dims.reduce(1, *)) }
    }

    /// Bytes of float initializer data.
    var weightBytes: Int { model.graph.initializer.reduce(0) { $0 + $1.rawData.count } }

    /// Writes the model to `url` atomically (temporary file, then rename): a
    /// failed write leaves no partial file. Returns the files written: the
    /// model, and `NAME.data` beside it when the weights are stored externally.
    @discardableResult
    public func write(to url: URL) throws -> [URL] {
        guard weightBytes > externalDataThreshold else {
            try writeAtomically(try serialized(model, file: url), to: url)
            return [url]
        }
        // External data (ONNX IR "external_data"): each float initializer's
        // bytes at an offset in one file whose name is relative to the model.
        let dataURL = url.appendingPathExtension("data")
        var external = model
        var blob = Data()
        for index in external.graph.initializer.indices where !external.graph.initializer[index].rawData.isEmpty {
            var tensor = external.graph.initializer[index]
            let entries = [("location", dataURL.lastPathComponent), ("offset", "\(blob.count)"), ("length", "\(tensor.rawData.count)")]
            blob.append(tensor.rawData)
            tensor.rawData = Data()
            tensor.dataLocation = .external
            tensor.externalData = entries.map { key, value in
                var entry = Onnx_StringStringEntryProto()
                entry.key = key
                entry.value = value
                return entry
            }
            external.graph.initializer[index] = tensor
        }
        try writeAtomically(blob, to: dataURL)
        do {
            try writeAtomically(try serialized(external, file: url), to: url)
        } catch {
            try? FileManager.default.removeItem(at: dataURL)
            throw error
        }
        return [url, dataURL]
    }

    /// The protobuf bytes of the model with weights inline (what `write` stores below the threshold).
    func serializedData() throws -> Data { try serialized(model, file: "ONNX model") }

    private func serialized(_ model: Onnx_ModelProto, file: URL) throws -> Data {
        try serialized(model, file: file.path)
    }

    private func serialized(_ model: Onnx_ModelProto, file: String) throws -> Data {
        do {
            return try model.serializedBytes()
        } catch {
            throw WeightFileError.writeFailed(file: file, reason: "cannot serialize the ONNX model: \(error)")
        }
    }
}
