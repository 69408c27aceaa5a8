// ONNX nodes of the building blocks in Layers/: each mirrors the layer's
// `.inference` forward (BN with running statistics, folded into its
// convolution; dropout the identity).

extension Conv2d: ONNXExportable {
    /// One Conv node; the stored weight and bias as initializers.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        graph.convolution(input, self)
    }
}

extension ConvBNReLU: ONNXExportable {
    /// Conv (BN folded in) → Relu.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        graph.relu(graph.convolution(input, conv, foldingIn: norm))
    }
}

extension ReLU: ONNXExportable {
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        graph.relu(input)
    }
}

extension Dropout: ONNXExportable {
    /// Inference: the identity, so no node.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue { input }
}

extension MaxPool2d: ONNXExportable {
    /// MaxPool; ONNX pads with −∞ for max pooling, as `maxPool` ignores padding.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        let g = geometry
        var y = input
        y.name = graph.node("MaxPool", [input.name], output: input.name + "/maxpool", attributes: [
            .ints("kernel_shape", [g.kernelSize, g.kernelSize]), .ints("strides", [g.stride, g.stride]),
            .ints("pads", [g.padding, g.padding, g.padding, g.padding]),
        ])
        y.height = input.height.map(g.outputSize)
        y.width = input.width.map(g.outputSize)
        return y
    }
}

extension AdaptiveAvgPool2d: ONNXExportable {
    /// Average pooling to `bins`×`bins` with the bins of `adaptiveAveragePool`
    /// (bin i spans ⌊i·n/b⌋ ..< ⌈(i+1)·n/b⌉):
    /// - 1 bin: GlobalAveragePool, for any input size;
    /// - a fixed size that the bins divide: AveragePool with kernel = stride = size/bins;
    /// - any other fixed size (bins of unequal, possibly overlapping extent):
    ///   Y = Aₕ·X·Aᵥᵀ as two MatMuls, where row i of Aₕ [b, H] holds 1/|bin i| over
    ///   bin i's rows (Aᵥ [b, W] likewise for columns).
    /// With more than one bin the input's height and width must be fixed.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        var y = input
        y.height = bins
        y.width = bins
        let output = input.name + "/pool\(bins)"
        if bins == 1 {
            y.name = graph.node("GlobalAveragePool", [input.name], output: output)
            return y
        }
        guard let (height, width) = input.fixedSize else { throw ONNXExportError.fixedSizeRequired(bins: bins, algorithm: nil) }
        if height % bins == 0 && width % bins == 0 {
            let (kh, kw) = (height / bins, width / bins)
            y.name = graph.node("AveragePool", [input.name], output: output, attributes: [
                .ints("kernel_shape", [kh, kw]), .ints("strides", [kh, kw]),
            ])
            return y
        }
        // X [N, C, H, W] × Aᵥᵀ [W, b] → [N, C, H, b]; Aₕ [b, H] × that → [N, C, b, b].
        let columns = graph.addInitializer(
            Self.poolingMatrix(bins: bins, size: width, transposed: true), name: "pool\(bins)_columns_\(width)")
        let rows = graph.addInitializer(
            Self.poolingMatrix(bins: bins, size: height, transposed: false), name: "pool\(bins)_rows_\(height)")
        let pooledColumns = graph.node("MatMul", [input.name, columns], output: output + "/columns")
        y.name = graph.node("MatMul", [rows, pooledColumns], output: output)
        return y
    }

    /// [bins, size] (or its transpose [size, bins]) with 1/|bin| over each bin's cells.
    static func poolingMatrix(bins: Int, size: Int, transposed: Bool) -> Tensor {
        var a = [Float](repeating: 0, count: bins * size)
        for bin in 0..<bins {
            let cells = adaptiveBin(bin, bins: bins, size: size)
            for cell in cells {
                a[transposed ? cell * bins + bin : bin * size + cell] = 1 / Float(cells.count)
            }
        }
        return Tensor(shape: transposed ? [size, bins] : [bins, size], scalars: a)
    }
}
