import Foundation

// The graph an export builds: nodes in topological order, initializers, and
// the node helpers the layers' `exportONNX` methods share (Conv with BN
// folded, Relu, Add, Concat, Resize). Layout is NCHW throughout, as in the
// network; ONNX's Conv weight layout [K, C, R, S] is ours.

/// A tensor flowing through the graph being built: its name, its channel
/// count, and its height and width when the export fixes them (nil: the
/// graph leaves that axis dynamic). The batch axis is always dynamic.
struct ONNXValue: Sendable {
    var name: String
    var channels: Int
    var height: Int?
    var width: Int?

    /// The spatial size when both axes are fixed.
    var fixedSize: (height: Int, width: Int)? {
        guard let height, let width else { return nil }
        return (height, width)
    }
}

/// A layer that can write its inference forward as ONNX nodes. Each layer's
/// conformance sits in `Export/` beside the others of its kind and reads the
/// same fields its `forward` reads, so a new layer or head exports by
/// conforming; the walk has no central table of layer kinds.
protocol ONNXExportable {
    /// Appends the nodes computing this layer's `.inference` forward of `input`
    /// and returns their output. Throws when the layer cannot be expressed for
    /// this input (e.g. an adaptive pool over a dynamic size).
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue
}

/// Nodes and initializers of an ONNX graph under construction, with the
/// weights its initializers are drawn from.
struct ONNXGraph {
    let parameters: ParameterStore
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var usedNames: Set<String> = []
    /// Shape(x)[2:4] nodes already emitted, by the name of x (a Resize to x's size reuses it).
    private var spatialShapes: [String: String] = [:]

    init(parameters: ParameterStore, reservedNames: [String]) {
        self.parameters = parameters
        usedNames = Set(reservedNames)
    }

    /// `base`, or `base_1`, `base_2`, … when taken: every node output and initializer name is unique.
    mutating func uniqueName(_ base: String) -> String {
        var name = base, suffix = 0
        while usedNames.contains(name) {
            suffix += 1
            name = "\(base)_\(suffix)"
        }
        usedNames.insert(name)
        return name
    }

    /// Appends one node with a single output named `output` (made unique; the
    /// node takes the same name) and returns that output's name.
    @discardableResult
    mutating func node(_ opType: String, _ inputs: [String], output: String, attributes: [Onnx_AttributeProto] = []) -> String {
        let name = uniqueName(output)
        var node = Onnx_NodeProto()
        node.opType = opType
        node.name = name
        node.input = inputs
        node.output = [name]
        node.attribute = attributes
        nodes.append(node)
        return name
    }

    /// A float32 initializer holding `tensor`'s scalars under `name` (made unique).
    mutating func addInitializer(_ tensor: Tensor, name: String) -> String {
        let name = uniqueName(name)
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        proto.dims = tensor.shape.dimensions.map(Int64.init)
        proto.rawData = littleEndianBytes(tensor.scalars)
        initializers.append(proto)
        return name
    }

    /// A 1-D int64 initializer (shape and axis constants).
    mutating func addInt64Initializer(_ values: [Int64], name: String) -> String {
        let name = uniqueName(name)
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        proto.dims = [Int64(values.count)]
        proto.int64Data = values
        initializers.append(proto)
        return name
    }

    /// The weight's name without its last component: `backbone.layer1.0.conv1`.
    func prefix(of id: ParameterID) -> String {
        let name = parameters.name(of: id)
        guard let dot = name.lastIndex(of: ".") else { return name }
        return String(name[..<dot])
    }
}

// MARK: - Nodes the layers share

extension ONNXGraph {
    /// A Conv node for `conv`, with `norm` (inference statistics) folded into
    /// its weight and bias:
    ///
    ///     s = γ / √(σ² + ε),  W′[k] = W[k]·s[k],  b′[k] = (b[k] − μ[k])·s[k] + β[k]
    ///
    /// computed in Double and rounded once. Initializers: `CONV.weight` [K, C, R, S]
    /// and, when there is a bias or a folded BN, `CONV.bias` [K].
    mutating func convolution(_ x: ONNXValue, _ conv: Conv2d, foldingIn norm: BatchNorm2d? = nil) -> ONNXValue {
        precondition(x.channels == conv.inputChannels, "Conv2d expected \(conv.inputChannels) channels, got \(x.channels)")
        let prefix = prefix(of: conv.weight)
        var weight = parameters[conv.weight]
        var bias = conv.bias.map { parameters[$0] }
        if let norm {
            precondition(norm.channels == conv.outputChannels)
            (weight, bias) = foldBatchNorm(weight: weight, bias: bias, norm: norm, parameters: parameters)
        }
        let weightName = addInitializer(weight, name: prefix + ".weight")
        precondition(weightName == prefix + ".weight", "\(prefix).weight exported twice")
        var inputs = [x.name, weightName]
        if let bias { inputs.append(addInitializer(bias, name: prefix + ".bias")) }
        let k = conv.kernelSize, p = conv.padding
        let output = node("Conv", inputs, output: prefix, attributes: [
            .ints("kernel_shape", [k, k]), .ints("strides", [conv.stride, conv.stride]),
            .ints("pads", [p, p, p, p]), .ints("dilations", [conv.dilation, conv.dilation]), .int("group", 1),
        ])
        let outputSize = { (size: Int?) in
            size.map { ($0 + 2 * p - conv.dilation * (k - 1) - 1) / conv.stride + 1 }
        }
        return ONNXValue(name: output, channels: conv.outputChannels, height: outputSize(x.height), width: outputSize(x.width))
    }

    mutating func relu(_ x: ONNXValue) -> ONNXValue {
        var y = x
        y.name = node("Relu", [x.name], output: x.name + "/relu")
        return y
    }

    mutating func add(_ a: ONNXValue, _ b: ONNXValue, output: String) -> ONNXValue {
        precondition(a.channels == b.channels, "Add of \(a.channels) and \(b.channels) channels")
        var y = a
        y.name = node("Add", [a.name, b.name], output: output)
        return y
    }

    /// Channel concatenation, in the order given.
    mutating func concatenateChannels(_ parts: [ONNXValue], output: String) -> ONNXValue {
        var y = parts[0]
        y.channels = parts.reduce(0) { $0 + $1.channels }
        y.name = node("Concat", parts.map(\.name), output: output, attributes: [.int("axis", 1)])
        return y
    }

    /// Bilinear resize of `x` to the height and width of `reference`, with
    /// `align_corners` (src = dst·(in − 1)/(out − 1), as `bilinearResize`).
    /// The target size is read from the reference at run time —
    /// Concat(Shape(x)[0:2], Shape(reference)[2:4]) — so it works for fixed
    /// and dynamic sizes alike.
    mutating func resize(_ x: ONNXValue, toSizeOf reference: ONNXValue, output: String) -> ONNXValue {
        let spatial: String
        if let known = spatialShapes[reference.name] {
            spatial = known
        } else {
            spatial = node("Shape", [reference.name], output: reference.name + "/shape_hw", attributes: [.int("start", 2)])
            spatialShapes[reference.name] = spatial
        }
        let batchAndChannels = node("Shape", [x.name], output: x.name + "/shape_nc", attributes: [.int("start", 0), .int("end", 2)])
        let sizes = node("Concat", [batchAndChannels, spatial], output: output + "/sizes", attributes: [.int("axis", 0)])
        let name = node("Resize", [x.name, "", "", sizes], output: output, attributes: [
            .string("mode", "linear"), .string("coordinate_transformation_mode", "align_corners"),
        ])
        return ONNXValue(name: name, channels: x.channels, height: reference.height, width: reference.width)
    }
}

/// BN (running statistics, ε = `batchNormEpsilon`) folded into the preceding
/// convolution: returns W′ = W·s and b′ = (b − μ)·s + β with s = γ/√(σ² + ε),
/// per output channel, computed in Double.
func foldBatchNorm(weight: Tensor, bias: Tensor?, norm: BatchNorm2d, parameters: ParameterStore) -> (weight: Tensor, bias: Tensor) {
    let gamma = parameters[norm.weight].scalars, beta = parameters[norm.bias].scalars
    let mean = parameters[norm.runningMean].scalars, variance = parameters[norm.runningVariance].scalars
    let k = weight.shape[0], perChannel = weight.shape.elementCount / k
    let b = bias?.scalars ?? [Float](repeating: 0, count: k)
    let scale = (0..<k).map { Double(gamma[$0]) / (Double(variance[$0]) + Double(batchNormEpsilon)).squareRoot() }
    let w = weight.scalars
    // W[K, C·R·S]: row k scaled by s[k].
    let folded = Tensor(shape: weight.shape) { out in
        for channel in 0..<k {
            for i in 0..<perChannel {
                out[channel * perChannel + i] = Float(Double(w[channel * perChannel + i]) * scale[channel])
            }
        }
    }
    let shift = Tensor(shape: [k], scalars: (0..<k).map {
        Float((Double(b[$0]) - Double(mean[$0])) * scale[$0] + Double(beta[$0]))
    })
    return (folded, shift)
}

/// The scalars as little-endian IEEE-754 bytes (ONNX `raw_data`).
func littleEndianBytes(_ scalars: [Float]) -> Data {
    var data = Data(count: scalars.count * 4)
    data.withUnsafeMutableBytes { bytes in
        for (i, value) in scalars.enumerated() {
            bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
        }
    }
    return data
}

extension Onnx_AttributeProto {
    static func int(_ name: String, _ value: Int) -> Self {
        var a = Self()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func ints(_ name: String, _ values: [Int]) -> Self {
        var a = Self()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func string(_ name: String, _ value: String) -> Self {
        var a = Self()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }
}
