import Foundation
@testable import Segmentation
import Testing

/// The ONNX export, checked structurally: the file is decoded with the
/// generated `onnx.proto` types and compared with the network it came from.
/// (Running it is Scripts/check_onnx.py's job: onnxruntime is not available
/// to Swift tests. Docs/export.md records that check's output.)
@Suite("ONNX export")
struct ONNXExportTests {
    /// A ResNet-50 network of `algorithm` with every tensor set by the
    /// closed-form fill of NetworkFill: BN statistics far from (0, 1), so
    /// folding is visible in every folded weight.
    static func model(_ algorithm: SegmentationAlgorithm, stem: ResNetStem = .deep, classes: Int = 5) -> SegmentationModel {
        let configuration = NetworkConfiguration(algorithm: algorithm, backbone: .resnet50, stem: stem, classCount: classes, auxiliaryHead: true)
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        let network = SegmentationNetwork(configuration: configuration, builder: &builder)
        var parameters = builder.store
        NetworkFill.fill(&parameters)
        return SegmentationModel(network: network, parameters: parameters)
    }

    static let fcn = model(.fcn)
    static let psp = model(.psp)
    static let deeplab = model(.deeplab)

    /// Exports and decodes the bytes a file would hold.
    static func decoded(_ model: SegmentationModel, size: ImageSize?, opset: Int = 17) throws -> Onnx_ModelProto {
        let export = try ONNXExporter.export(model, options: ONNXExportOptions(opset: opset, inputSize: size))
        return try Onnx_ModelProto(serializedBytes: export.serializedData())
    }

    static func opCounts(_ graph: Onnx_GraphProto) -> [String: Int] {
        graph.node.reduce(into: [:]) { $0[$1.opType, default: 0] += 1 }
    }

    static func dimensions(_ info: Onnx_ValueInfoProto) -> [String] {
        info.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? "\($0.dimValue)" : $0.dimParam }
    }

    static func floats(_ tensor: Onnx_TensorProto) -> [Float] {
        tensor.rawData.withUnsafeBytes { bytes in
            (0..<bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    // MARK: - Node kinds and counts per architecture

    struct Case: Sendable, CustomTestStringConvertible {
        let algorithm: SegmentationAlgorithm
        let size: ImageSize?
        let counts: [String: Int]
        var testDescription: String { "\(algorithm.rawValue) at \(size?.description ?? "dynamic size")" }
    }

    /// Counted by hand from SPEC §4, ResNet-50 with the deep stem:
    /// backbone Conv 3 (stem) + 16 blocks × 3 + 4 projections = 55; Relu 3 + 16 × 3 = 51;
    /// one MaxPool; 16 Adds. Each Resize reads its sizes from Concat(Shape(x)[0:2],
    /// Shape(reference)[2:4]), the reference's Shape emitted once.
    static let cases: [Case] = [
        // head: 3×3 unit + classifier; one Resize (to the image).
        Case(algorithm: .fcn, size: nil, counts: [
            "Conv": 57, "Relu": 52, "MaxPool": 1, "Add": 16, "Resize": 1, "Shape": 2, "Concat": 1]),
        // 64×48 → features 8×6: 2 bins divide both (AveragePool), 3 and 6 bins do not
        // (two MatMuls each). Pyramid 4 × (Conv + Relu + Resize); Concat of 5 + one per Resize.
        Case(algorithm: .psp, size: ImageSize(height: 64, width: 48), counts: [
            "Conv": 61, "Relu": 56, "MaxPool": 1, "Add": 16, "GlobalAveragePool": 1, "AveragePool": 1, "MatMul": 4,
            "Resize": 5, "Shape": 7, "Concat": 6]),
        // 48×48 → features 6×6: every bin count divides 6.
        Case(algorithm: .psp, size: ImageSize(height: 48, width: 48), counts: [
            "Conv": 61, "Relu": 56, "MaxPool": 1, "Add": 16, "GlobalAveragePool": 1, "AveragePool": 3,
            "Resize": 5, "Shape": 7, "Concat": 6]),
        // ASPP 4 branches + pooling branch + projection, unit, classifier = 8 convs, 7 Relus.
        Case(algorithm: .deeplab, size: nil, counts: [
            "Conv": 63, "Relu": 58, "MaxPool": 1, "Add": 16, "GlobalAveragePool": 1, "Resize": 2, "Shape": 4, "Concat": 3]),
        Case(algorithm: .deeplab, size: ImageSize(height: 65, width: 33), counts: [
            "Conv": 63, "Relu": 58, "MaxPool": 1, "Add": 16, "GlobalAveragePool": 1, "Resize": 2, "Shape": 4, "Concat": 3]),
    ]

    static func model(for algorithm: SegmentationAlgorithm) -> SegmentationModel {
        switch algorithm {
        case .fcn: return fcn
        case .psp: return psp
        case .deeplab: return deeplab
        }
    }

    @Test(arguments: cases)
    func nodeKindsAndCountsAndTheContract(_ c: Case) throws {
        let model = Self.model(for: c.algorithm)
        let onnx = try Self.decoded(model, size: c.size)
        #expect(onnx.irVersion == 8 && onnx.opsetImport.map(\.version) == [17] && onnx.opsetImport[0].domain.isEmpty)
        let graph = onnx.graph
        #expect(Self.opCounts(graph) == c.counts)

        // image float32 [N, 3, H, W] → logits float32 [N, C, H, W]; dynamic axes named.
        let spatial = c.size.map { ["\($0.height)", "\($0.width)"] } ?? ["H", "W"]
        #expect(graph.input.map(\.name) == ["image"] && graph.output.map(\.name) == ["logits"])
        #expect(Self.dimensions(graph.input[0]) == ["N", "3"] + spatial)
        #expect(Self.dimensions(graph.output[0]) == ["N", "5"] + spatial)
        let float = Int32(Onnx_TensorProto.DataType.float.rawValue)
        #expect(graph.input[0].type.tensorType.elemType == float && graph.output[0].type.tensorType.elemType == float)

        // Topological order: every input is the image, an initializer, an
        // omitted optional input, or an earlier node's output; names are unique.
        var known = Set(["image", ""] + graph.initializer.map(\.name))
        for node in graph.node {
            for input in node.input { #expect(known.contains(input), "\(node.name) reads \(input) before it exists") }
            for output in node.output { #expect(known.insert(output).inserted, "\(output) is written twice") }
        }
        #expect(graph.node.last?.output == ["logits"] && graph.node.last?.opType == "Resize")
        // The aux head is training-only.
        #expect(!graph.initializer.contains { $0.name.hasPrefix("aux_head.") })

        // Every Resize is bilinear with align_corners (SPEC §4).
        for node in graph.node where node.opType == "Resize" {
            let attributes = Dictionary(uniqueKeysWithValues: node.attribute.map { ($0.name, String(decoding: $0.s, as: UTF8.self)) })
            #expect(attributes == ["mode": "linear", "coordinate_transformation_mode": "align_corners"])
            #expect(node.input.count == 4 && node.input[1].isEmpty && node.input[2].isEmpty)
        }
    }

    @Test func initializersAreTheConvolutionsOfTheParameterStoreWithBNFolded() throws {
        for model in [Self.fcn, Self.psp, Self.deeplab] {
            let onnx = try Self.decoded(model, size: ImageSize(height: 48, width: 48))
            let initializers = Dictionary(uniqueKeysWithValues: onnx.graph.initializer.map { ($0.name, $0) })
            let p = model.parameters
            let convolutionWeights = p.ids.filter {
                p[$0].shape.rank == 4 && !p.name(of: $0).hasPrefix("aux_head.")
            }
            var expected: Set<String> = []
            for id in convolutionWeights {
                let name = p.name(of: id), prefix = String(name.dropLast(".weight".count))
                let k = p[id].shape[0]
                expected.formUnion([name, prefix + ".bias"])
                let weight = try #require(initializers[name], "\(name) missing")
                #expect(weight.dims == p[id].shape.dimensions.map(Int64.init), "\(name)")
                #expect(weight.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue))
                let bias = try #require(initializers[prefix + ".bias"], "\(prefix).bias missing")
                #expect(bias.dims == [Int64(k)])
            }
            // Nothing else: no BN tensor survives folding, no aux head.
            #expect(Set(initializers.keys) == expected)
            // The classifier has its own bias and no BN: stored unchanged.
            let classifier = try #require(initializers["head.block.4.weight"])
            #expect(Self.floats(classifier) == p[p.id(named: "head.block.4.weight")!].scalars)
            #expect(Self.floats(initializers["head.block.4.bias"]!) == p[p.id(named: "head.block.4.bias")!].scalars)
        }
    }

    /// W′ = W·γ/√(σ² + ε) and b′ = β − μ·γ/√(σ² + ε), by hand in Double for two
    /// convolutions (the stem's first and a layer4 projection).
    @Test(arguments: [("backbone.conv1.0", "backbone.conv1.1"), ("backbone.layer4.0.downsample.0", "backbone.layer4.0.downsample.1"),
                      ("head.aspp.convs.4.1", "head.aspp.convs.4.2")])
    func foldedBatchNormMatchesAHandComputation(_ names: (conv: String, norm: String)) throws {
        let model = Self.deeplab
        let onnx = try Self.decoded(model, size: nil)
        let initializers = Dictionary(uniqueKeysWithValues: onnx.graph.initializer.map { ($0.name, $0) })
        let p = model.parameters
        func values(_ name: String) -> [Double] { p[p.id(named: name)!].scalars.map(Double.init) }
        let w = values(names.conv + ".weight")
        let (gamma, beta) = (values(names.norm + ".weight"), values(names.norm + ".bias"))
        let (mean, variance) = (values(names.norm + ".running_mean"), values(names.norm + ".running_var"))
        let folded = Self.floats(try #require(initializers[names.conv + ".weight"]))
        let bias = Self.floats(try #require(initializers[names.conv + ".bias"]))
        let k = gamma.count, perChannel = w.count / k
        #expect(folded.count == w.count && bias.count == k)
        var largestError = 0.0
        for channel in 0..<k {
            let scale = gamma[channel] / (variance[channel] + 1e-5).squareRoot()
            for i in 0..<perChannel {
                let expected = w[channel * perChannel + i] * scale
                largestError = max(largestError, abs(Double(folded[channel * perChannel + i]) - expected) / max(abs(expected), 1e-30))
            }
            let expectedBias = beta[channel] - mean[channel] * scale
            largestError = max(largestError, abs(Double(bias[channel]) - expectedBias) / max(abs(expectedBias), 1e-6))
        }
        // One rounding of a Double result to Float: half an ulp, 2⁻²⁴ ≈ 6e-8 relative.
        #expect(largestError <= 6e-8)
        // Folding changed the weights (the fill's BN is not the identity).
        #expect(folded != p[p.id(named: names.conv + ".weight")!].scalars)
    }

    @Test func convolutionAttributesFollowTheDilatedGeometry() throws {
        let onnx = try Self.decoded(Self.deeplab, size: nil)
        let nodes = Dictionary(uniqueKeysWithValues: onnx.graph.node.map { ($0.name, $0) })
        func attribute(_ node: String, _ name: String) -> [Int64]? {
            nodes[node]?.attribute.first { $0.name == name }?.ints
        }
        // (node, kernel, stride, pads, dilation), SPEC §4.
        let expected: [(String, Int64, Int64, Int64, Int64)] = [
            ("backbone.conv1.0", 3, 2, 1, 1), ("backbone.layer2.0.conv2", 3, 2, 1, 1),
            ("backbone.layer3.0.conv2", 3, 1, 1, 1), ("backbone.layer3.1.conv2", 3, 1, 2, 2),
            ("backbone.layer4.0.conv2", 3, 1, 2, 2), ("backbone.layer4.2.conv2", 3, 1, 4, 4),
            ("head.aspp.convs.1.0", 3, 1, 12, 12), ("head.aspp.convs.3.0", 3, 1, 36, 36), ("head.block.4", 1, 1, 0, 1),
        ]
        for (node, kernel, stride, pad, dilation) in expected {
            #expect(nodes[node]?.opType == "Conv", "\(node)")
            #expect(attribute(node, "kernel_shape") == [kernel, kernel], "\(node)")
            #expect(attribute(node, "strides") == [stride, stride], "\(node)")
            #expect(attribute(node, "pads") == [pad, pad, pad, pad], "\(node)")
            #expect(attribute(node, "dilations") == [dilation, dilation], "\(node)")
        }
        let pool = try #require(onnx.graph.node.first { $0.opType == "MaxPool" })
        #expect(pool.attribute.map(\.name) == ["kernel_shape", "strides", "pads"])
        #expect(pool.attribute.map(\.ints) == [[3, 3], [2, 2], [1, 1, 1, 1]])
    }

    /// The MatMul form of an adaptive pool is `adaptiveAveragePool` itself.
    @Test(arguments: [(3, 8), (6, 8), (6, 4), (2, 5), (6, 1)])
    func poolingMatricesGiveTheAdaptiveBins(_ c: (bins: Int, size: Int)) {
        let x = Tensor(shape: [1, 2, c.size, c.size + 1]) { out in
            for i in out.indices { out[i] = Float(i % 7) - 2.5 + Float(i) * 0.01 }
        }
        let expected = adaptiveAveragePool(x, outputHeight: c.bins, outputWidth: c.bins).scalars
        let rows = AdaptiveAvgPool2d.poolingMatrix(bins: c.bins, size: c.size, transposed: false).scalars
        let columns = AdaptiveAvgPool2d.poolingMatrix(bins: c.bins, size: c.size + 1, transposed: true).scalars
        let (h, w, b) = (c.size, c.size + 1, c.bins)
        let xs = x.scalars
        for plane in 0..<2 {
            for i in 0..<b {
                for j in 0..<b {
                    var total: Float = 0
                    for r in 0..<h { for s in 0..<w { total += rows[i * h + r] * xs[plane * h * w + r * w + s] * columns[s * b + j] } }
                    #expect(abs(total - expected[plane * b * b + i * b + j]) < 1e-5)
                }
            }
        }
    }

    @Test func standardStemAndOtherOpsets() throws {
        let model = Self.model(.fcn, stem: .standard, classes: 2)
        let onnx = try Self.decoded(model, size: nil, opset: 21)
        #expect(onnx.irVersion == 10 && onnx.opsetImport.map(\.version) == [21])
        // One 7×7 stem convolution instead of three 3×3.
        #expect(Self.opCounts(onnx.graph)["Conv"] == 55)
        #expect(onnx.graph.node.first?.attribute.first { $0.name == "kernel_shape" }?.ints == [7, 7])
        for opset in [16, 22] {
            #expect(throws: ONNXExportError.unsupportedOpset(opset)) {
                try ONNXExporter.export(model, options: ONNXExportOptions(opset: opset))
            }
        }
    }

    @Test func pspNeedsAFixedSizeAndSizesAreChecked() throws {
        #expect(throws: ONNXExportError.fixedSizeRequired(bins: 2, algorithm: "psp")) {
            try ONNXExporter.export(Self.psp)
        }
        #expect(try ImageSize(parsing: "480,360") == ImageSize(height: 480, width: 360))
        #expect(try ImageSize(parsing: "64x48") == ImageSize(height: 64, width: 48))
        #expect(try ImageSize(parsing: "96") == ImageSize(height: 96, width: 96))
        for text in ["480,", "a,b", "1,2,3", ""] {
            #expect(throws: ONNXExportError.self) { try ImageSize(parsing: text) }
        }
        for size in [ImageSize(height: 0, width: 480), ImageSize(height: 480, width: -1), ImageSize(height: 20_000, width: 20_000)] {
            #expect(throws: ONNXExportError.self) { try ONNXExporter.export(Self.fcn, options: ONNXExportOptions(inputSize: size)) }
        }
        #expect(throws: ONNXExportError.unknownFormat("tflite")) { try ExportFormat(parsing: "tflite") }
    }

    /// Above the threshold (2 GB by default; lowered here) the weights move to
    /// NAME.data and each initializer points at its bytes there.
    @Test func externalDataHoldsTheSameBytes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let export = try ONNXExporter.export(Self.fcn, options: ONNXExportOptions(externalDataThreshold: 1_000_000))
        let inline = try Onnx_ModelProto(serializedBytes: export.serializedData())
        let url = directory.appendingPathComponent("fcn.onnx")
        let files = try export.write(to: url)
        #expect(files.map(\.lastPathComponent) == ["fcn.onnx", "fcn.onnx.data"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["fcn.onnx", "fcn.onnx.data"])
        let external = try Onnx_ModelProto(serializedBytes: Data(contentsOf: url))
        let blob = try Data(contentsOf: files[1])
        #expect(external.graph.node == inline.graph.node)
        for (stored, original) in zip(external.graph.initializer, inline.graph.initializer) {
            #expect(stored.name == original.name && stored.dims == original.dims)
            #expect(stored.dataLocation == .external && stored.rawData.isEmpty)
            let entries = Dictionary(uniqueKeysWithValues: stored.externalData.map { ($0.key, $0.value) })
            #expect(entries["location"] == "fcn.onnx.data")
            let offset = Int(entries["offset"] ?? "") ?? -1, length = Int(entries["length"] ?? "") ?? -1
            #expect(length == original.rawData.count && offset >= 0 && offset + length <= blob.count)
            if offset >= 0 && length >= 0 && offset + length <= blob.count {
                #expect(blob.subdata(in: offset..<offset + length) == original.rawData, "\(stored.name)")
            }
        }
    }
}
