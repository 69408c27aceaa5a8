// Layers without parameters: ReLU, max pool, adaptive average pool, bilinear
// resize, dropout. Each pairs a forward (explicit mode via the context) with
// its backward; caches hold only what the backward reads.

public struct ReLU: Sendable {
    public init() {}

    /// Cache: the output (ReLU's backward reads y > 0).
    public func forward(_ x: Tensor, context: ForwardContext) -> Tensor { relu(x) }

    public func backward(_ dy: Tensor, output y: Tensor) -> Tensor {
        Tensor(shape: y.shape) { dx in
            dy.withPointer { g in y.withPointer { out in
                reluBackward(inputGradient: dx.baseAddress!, outputGradient: g, output: out, count: dx.count, overwrite: true)
            } }
        }
    }
}

public struct MaxPool2d: Sendable {
    public let geometry: PoolGeometry
    public init(_ geometry: PoolGeometry = .resnetStem) { self.geometry = geometry }

    public func forward(_ x: Tensor, context: ForwardContext) -> (Tensor, MaxPoolIndices?) {
        guard context.mode == .training else { return (maxPoolValues(x, geometry: geometry), nil) }
        let (y, indices) = maxPool(x, geometry: geometry)
        return (y, indices)
    }

    public func backward(_ dy: Tensor, indices: MaxPoolIndices) -> Tensor {
        var dx = Tensor.zeros(indices.inputShape)
        maxPoolBackward(inputGradient: &dx, outputGradient: dy, indices: indices)
        return dx
    }
}

/// Average pooling to `bins`×`bins` (1: global average pooling).
public struct AdaptiveAvgPool2d: Sendable {
    public let bins: Int
    public init(bins: Int) { self.bins = bins }

    public func forward(_ x: Tensor) -> Tensor {
        adaptiveAveragePool(x, outputHeight: bins, outputWidth: bins)
    }

    public func backward(_ dy: Tensor, inputShape: Shape) -> Tensor {
        var dx = Tensor.zeros(inputShape)
        adaptiveAveragePoolBackward(inputGradient: &dx, outputGradient: dy)
        return dx
    }
}

/// Bilinear resize to a size chosen at call time, align_corners = true.
public struct Upsample: Sendable {
    public init() {}

    public func forward(_ x: Tensor, height: Int, width: Int) -> Tensor {
        x.shape.height == height && x.shape.width == width ? x : bilinearResize(x, height: height, width: width)
    }

    public func backward(_ dy: Tensor, inputShape: Shape) -> Tensor {
        if dy.shape == inputShape { return dy }
        var dx = Tensor.zeros(inputShape)
        bilinearResizeBackward(inputGradient: &dx, outputGradient: dy)
        return dx
    }
}

/// Inverted dropout; the identity in inference mode.
public struct Dropout: Sendable {
    public let probability: Float
    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1)
        self.probability = probability
    }

    /// Cache: the mask seed (nil in inference, where the layer is the identity).
    public func forward(_ x: Tensor, context: ForwardContext) -> (Tensor, UInt64?) {
        guard context.mode == .training, probability > 0 else { return (x, nil) }
        let seed = context.dropoutSeed(for: x.shape)
        return (dropout(x, probability: probability, seed: seed), seed)
    }

    public func backward(_ dy: Tensor, seed: UInt64?) -> Tensor {
        guard let seed else { return dy }
        var dx = Tensor.zeros(dy.shape)
        dropoutBackward(inputGradient: &dx, outputGradient: dy, probability: probability, seed: seed)
        return dx
    }
}
