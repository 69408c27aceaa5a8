// ReLU over any shape, elementwise.
//   forward   y = max(x, 0)
//   backward  dx += dy where y > 0 (the gradient at the kink x = 0 is taken as 0, as PyTorch and MXNet do)

private let elementwiseChunk = 1 << 16

func reluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    let y = SendablePointer(output), x = SendablePointer(UnsafeMutablePointer(mutating: input))
    parallelFor((count + elementwiseChunk - 1) / elementwiseChunk, minimumChunk: 4) { blocks in
        let start = blocks.lowerBound * elementwiseChunk, end = min(count, blocks.upperBound * elementwiseChunk)
        for i in start..<end { y.base[i] = x.base[i] > 0 ? x.base[i] : 0 }
    }
}

/// Uses the forward *output*, so the input can be released (or overwritten in place) after the forward.
/// With `overwrite`, dx is written instead of added to.
func reluBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    output: UnsafePointer<Float>, count: Int, overwrite: Bool = false
) {
    let dx = SendablePointer(inputGradient)
    let dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    let y = SendablePointer(UnsafeMutablePointer(mutating: output))
    parallelFor((count + elementwiseChunk - 1) / elementwiseChunk, minimumChunk: 4) { blocks in
        let start = blocks.lowerBound * elementwiseChunk, end = min(count, blocks.upperBound * elementwiseChunk)
        var i = start
        while i + 8 <= end {
            let value = where8(load8(dy.base, i), positive: load8(y.base, i))
            store8(overwrite ? value : value + load8(dx.base, i), dx.base, i)
            i += 8
        }
        while i < end {
            let value: Float = y.base[i] > 0 ? dy.base[i] : 0
            dx.base[i] = overwrite ? value : dx.base[i] + value
            i += 1
        }
    }
}

// MARK: - Tensor API

public func relu(_ input: Tensor) -> Tensor {
    Tensor(shape: input.shape) { y in
        input.withPointer { reluForward(output: y.baseAddress!, input: $0, count: y.count) }
    }
}

/// Adds ReLU's input gradient into `inputGradient`, given the forward's output.
public func reluBackward(inputGradient: inout Tensor, outputGradient: Tensor, output: Tensor) {
    precondition(inputGradient.shape == output.shape && outputGradient.shape == output.shape)
    inputGradient.withMutablePointer { dx in outputGradient.withPointer { dy in output.withPointer { y in
        reluBackward(inputGradient: dx, outputGradient: dy, output: y, count: output.elementCount)
    } } }
}
