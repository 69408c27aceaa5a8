// ONNX nodes of the backbone and the heads in Models/: each reads as the
// `.inference` path of the forward it mirrors, in the same order.

extension Bottleneck: ONNXExportable {
    /// conv1 → conv2 → conv3 (BN folded into each) + identity or projection → Add → Relu.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        let out1 = try unit1.exportONNX(input, to: &graph)
        let out2 = try unit2.exportONNX(out1, to: &graph)
        let normalized = graph.convolution(out2, conv3, foldingIn: bn3)
        let identity = downsample.map { graph.convolution(input, $0.conv, foldingIn: $0.norm) } ?? input
        let block = String(graph.prefix(of: conv3.weight).dropLast(".conv3".count))
        return graph.relu(graph.add(normalized, identity, output: block + "/add"))
    }
}

extension ResNet: ONNXExportable {
    /// Stem, max pool, layer1…layer4; returns c4 (c3 feeds only the aux head, which is not exported).
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        precondition(input.channels == 3, "ResNet expects 3-channel images")
        var h = input
        for unit in stemUnits { h = try unit.exportONNX(h, to: &graph) }
        h = try maxPool.exportONNX(h, to: &graph)
        for block in layers.joined() { h = try block.exportONNX(h, to: &graph) }
        return h
    }
}

extension FCNHead: ONNXExportable {
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        let h = try unit.exportONNX(input, to: &graph)
        let dropped = try dropout.exportONNX(h, to: &graph)
        return try classifier.exportONNX(dropped, to: &graph)
    }
}

extension PSPHead: ONNXExportable {
    /// Pools to 1, 2, 3 and 6 bins (fixed input size needed beyond 1 bin), each
    /// branch resized back to c4's size; Concat [c4, p1, p2, p3, p6] as the forward.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        var parts = [input]
        for (bins, branch) in zip(Self.bins, pyramid) {
            let pooled = try AdaptiveAvgPool2d(bins: bins).exportONNX(input, to: &graph)
            let feature = try branch.exportONNX(pooled, to: &graph)
            parts.append(graph.resize(feature, toSizeOf: input, output: feature.name + "/resize"))
        }
        let concatenated = graph.concatenateChannels(parts, output: graph.prefix(of: unit.conv.weight) + "/concat")
        let mixed = try unit.exportONNX(concatenated, to: &graph)
        let dropped = try dropout.exportONNX(mixed, to: &graph)
        return try classifier.exportONNX(dropped, to: &graph)
    }
}

extension DeepLabHead: ONNXExportable {
    /// ASPP (four convolution branches, image pooling resized back), Concat,
    /// projection, then the 3×3 unit and the classifier.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        var parts: [ONNXValue] = []
        for branch in branches { parts.append(try branch.exportONNX(input, to: &graph)) }
        let pooled = try AdaptiveAvgPool2d(bins: 1).exportONNX(input, to: &graph)
        let pooledFeature = try pooling.exportONNX(pooled, to: &graph)
        parts.append(graph.resize(pooledFeature, toSizeOf: input, output: pooledFeature.name + "/resize"))
        let concatenated = graph.concatenateChannels(parts, output: graph.prefix(of: projection.conv.weight) + "/concat")
        let projected = try projection.exportONNX(concatenated, to: &graph)
        let projectedDropped = try projectionDropout.exportONNX(projected, to: &graph)
        let mixed = try unit.exportONNX(projectedDropped, to: &graph)
        let dropped = try dropout.exportONNX(mixed, to: &graph)
        return try classifier.exportONNX(dropped, to: &graph)
    }
}

extension SegmentationHead: ONNXExportable {
    /// The head this case holds (the same dispatch as `forward`).
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        try exportable.exportONNX(input, to: &graph)
    }

    private var exportable: any ONNXExportable {
        switch self {
        case .fcn(let head): return head
        case .psp(let head): return head
        case .deeplab(let head): return head
        }
    }
}

extension SegmentationNetwork: ONNXExportable {
    /// Backbone → head → Resize of the head's logits to the image's size, named
    /// `logits`. The aux head is training-only and left out.
    func exportONNX(_ input: ONNXValue, to graph: inout ONNXGraph) throws -> ONNXValue {
        let c4 = try backbone.exportONNX(input, to: &graph)
        let headLogits = try head.exportONNX(c4, to: &graph)
        return graph.resize(headLogits, toSizeOf: input, output: ONNXExporter.outputName)
    }
}
