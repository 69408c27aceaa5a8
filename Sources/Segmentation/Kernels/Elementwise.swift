// Residual addition and channel concatenation, over NCHW.

private let elementwiseChunk = 1 << 16

/// y = a + b (same shape). Backward: da += dy, db += dy (`accumulate`).
func addForward(output: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    let y = SendablePointer(output)
    let a = SendablePointer(UnsafeMutablePointer(mutating: a)), b = SendablePointer(UnsafeMutablePointer(mutating: b))
    parallelFor((count + elementwiseChunk - 1) / elementwiseChunk, minimumChunk: 4) { blocks in
        let start = blocks.lowerBound * elementwiseChunk, end = min(count, blocks.upperBound * elementwiseChunk)
        for i in start..<end { y.base[i] = a.base[i] + b.base[i] }
    }
}

/// dst += src, split over the workers when large.
func accumulate(into destination: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>, count: Int) {
    parallelAddInPlace(destination, source, count: count)
}

/// Concatenates `inputs[i]` of shape [N, Cᵢ, H, W] along channels into [N, ΣCᵢ, H, W].
func concatenateChannelsForward(
    output: UnsafeMutablePointer<Float>, inputs: [UnsafePointer<Float>], channels: [Int], batch: Int, plane: Int
) {
    let total = channels.reduce(0, +)
    let y = SendablePointer(output)
    let xs = inputs.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
    parallelForBalanced(batch * inputs.count, grain: 1) { range in
        for job in range {
            let n = job / inputs.count, i = job % inputs.count
            let offset = channels[..<i].reduce(0, +)
            (y.base + (n * total + offset) * plane).update(
                from: xs[i].base + n * channels[i] * plane, count: channels[i] * plane)
        }
    }
}

/// Adds the slice of `outputGradient` [N, ΣC, H, W] starting at channel `offset`
/// into `inputGradient` [N, Cᵢ, H, W].
func concatenateChannelsBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    offset: Int, channels: Int, totalChannels: Int, batch: Int, plane: Int
) {
    let dx = SendablePointer(inputGradient)
    let dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    parallelFor(batch, minimumChunk: max(1, 65536 / max(1, channels * plane))) { range in
        for n in range {
            addInPlace(dx.base + n * channels * plane, dy.base + (n * totalChannels + offset) * plane, count: channels * plane)
        }
    }
}

// MARK: - Tensor API

/// Elementwise sum of two tensors of the same shape (the residual connection).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: \(a.shape) ≠ \(b.shape)")
    return Tensor(shape: a.shape) { y in
        a.withPointer { pa in b.withPointer { pb in addForward(output: y.baseAddress!, pa, pb, count: y.count) } }
    }
}

/// `gradient += outputGradient`: the backward of `add` for either operand.
public func accumulate(_ gradient: inout Tensor, _ outputGradient: Tensor) {
    precondition(gradient.shape == outputGradient.shape, "accumulate: \(gradient.shape) ≠ \(outputGradient.shape)")
    gradient.withMutablePointer { d in outputGradient.withPointer { accumulate(into: d, $0, count: outputGradient.elementCount) } }
}

/// Concatenation along channels of NCHW tensors with equal N, H, W.
public func concatenateChannels(_ inputs: [Tensor]) -> Tensor {
    precondition(!inputs.isEmpty, "concatenate: no inputs")
    let first = inputs[0].shape
    precondition(inputs.allSatisfy { $0.shape.rank == 4 && $0.shape.batch == first.batch
        && $0.shape.height == first.height && $0.shape.width == first.width },
        "concatenate: shapes \(inputs.map(\.shape)) differ outside the channel axis")
    let channels = inputs.map(\.shape.channels)
    let shape: Shape = [first.batch, channels.reduce(0, +), first.height, first.width]
    return Tensor(shape: shape) { y in
        withPointers(inputs) { pointers in
            concatenateChannelsForward(output: y.baseAddress!, inputs: pointers, channels: channels,
                                       batch: first.batch, plane: first.height * first.width)
        }
    }
}

/// Adds the slices of `outputGradient` into the matching `inputGradients`.
public func concatenateChannelsBackward(inputGradients: inout [Tensor], outputGradient: Tensor) {
    let s = outputGradient.shape
    let channels = inputGradients.map(\.shape.channels)
    precondition(channels.reduce(0, +) == s.channels, "concatenate backward: channels \(channels) ≠ \(s.channels)")
    var offset = 0
    outputGradient.withPointer { dy in
        for i in inputGradients.indices {
            inputGradients[i].withMutablePointer { dx in
                concatenateChannelsBackward(inputGradient: dx, outputGradient: dy, offset: offset, channels: channels[i],
                                            totalChannels: s.channels, batch: s.batch, plane: s.height * s.width)
            }
            offset += channels[i]
        }
    }
}

/// Calls `body` with the base addresses of all `tensors`, valid for the call.
func withPointers<R>(_ tensors: [Tensor], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func recurse(_ index: Int, _ collected: [UnsafePointer<Float>]) -> R {
        if index == tensors.count { return body(collected) }
        return tensors[index].withPointer { recurse(index + 1, collected + [$0]) }
    }
    return recurse(0, [])
}
