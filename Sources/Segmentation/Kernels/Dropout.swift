// Inverted dropout, elementwise over any shape.
//   keep(i) = u(i) ≥ p with u(i) = unitFloat(mix(seed + i·φ)), a counter-based draw,
//   y = x·keep(i)/(1 − p);  backward dx += dy·keep(i)/(1 − p).
// The mask is a pure function of (seed, i): it is never stored, backward
// recomputes it, and the thread split cannot change it.

@inline(__always)
private func keepScale(_ index: Int, seed: UInt64, probability: Float, scale: Float) -> Float {
    let bits = SplitMix64.mix(seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15)
    return SplitMix64.unitFloat(bits) >= probability ? scale : 0
}

/// The seed whose mask element i is element `offset` + i of `seed`'s mask
/// (the draw is linear in the counter), for a worker holding part of a batch.
func dropoutSeed(_ seed: UInt64, skippingElements offset: Int) -> UInt64 {
    seed &+ UInt64(truncatingIfNeeded: offset) &* 0x9E37_79B9_7F4A_7C15
}

private let dropoutChunk = 1 << 15

func dropoutForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int, probability: Float, seed: UInt64
) {
    let scale = 1 / (1 - probability)
    let y = SendablePointer(output), x = SendablePointer(UnsafeMutablePointer(mutating: input))
    parallelFor((count + dropoutChunk - 1) / dropoutChunk, minimumChunk: 2) { blocks in
        let start = blocks.lowerBound * dropoutChunk, end = min(count, blocks.upperBound * dropoutChunk)
        for i in start..<end { y.base[i] = x.base[i] * keepScale(i, seed: seed, probability: probability, scale: scale) }
    }
}

func dropoutBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>, count: Int,
    probability: Float, seed: UInt64
) {
    let scale = 1 / (1 - probability)
    let dx = SendablePointer(inputGradient), dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    parallelFor((count + dropoutChunk - 1) / dropoutChunk, minimumChunk: 2) { blocks in
        let start = blocks.lowerBound * dropoutChunk, end = min(count, blocks.upperBound * dropoutChunk)
        for i in start..<end { dx.base[i] += dy.base[i] * keepScale(i, seed: seed, probability: probability, scale: scale) }
    }
}

// MARK: - Tensor API

/// Zeroes each element with probability `probability` and scales the rest by
/// 1/(1 − p). The same `seed` gives the same mask; pass it again to the backward.
public func dropout(_ input: Tensor, probability: Float, seed: UInt64) -> Tensor {
    precondition(probability >= 0 && probability < 1, "dropout probability \(probability) not in [0, 1)")
    return Tensor(shape: input.shape) { y in
        input.withPointer { dropoutForward(output: y.baseAddress!, input: $0, count: y.count, probability: probability, seed: seed) }
    }
}

public func dropoutBackward(inputGradient: inout Tensor, outputGradient: Tensor, probability: Float, seed: UInt64) {
    precondition(inputGradient.shape == outputGradient.shape)
    inputGradient.withMutablePointer { dx in outputGradient.withPointer { dy in
        dropoutBackward(inputGradient: dx, outputGradient: dy, count: outputGradient.elementCount,
                        probability: probability, seed: seed)
    } }
}
