import Segmentation
import Testing

/// Compares an analytic backward against central finite differences.
///
/// The scalar probed is L = Σⱼ rⱼ·yⱼ with r a fixed sinusoid of the output's
/// shape (so every output element matters and no two have the same weight),
/// accumulated in Double. For each probed input element xᵢ:
///     numeric = (L(xᵢ + ε) − L(xᵢ − ε)) / (actual step in Float32)
/// and the analytic value is the backward's input gradient given dy = r.
///
/// Passing means |numeric − analytic| ≤ absoluteTolerance·scale + relativeTolerance·|analytic|
/// for every probed element, where scale = max |analytic| over the tensor.
/// Forward passes run in Float32, so L carries ~1e-7·Σ|rⱼyⱼ| of rounding;
/// divided by 2ε this bounds how small the tolerances can be (callers state why theirs fit).
///
/// - Parameters:
///   - inputs: the tensors to differentiate with respect to.
///   - forward: the function y = f(inputs).
///   - backward: given inputs and dy, returns the gradient for each input
///     (starting from zero, so an accumulating backward returns exactly its contribution).
///   - probesPerInput: at most this many elements per input are perturbed (evenly spread).
public func checkGradients(
    inputs: [Tensor],
    epsilon: Float,
    absoluteTolerance: Double = 1e-3,
    relativeTolerance: Double = 1e-3,
    probesPerInput: Int = 64,
    forward: ([Tensor]) -> Tensor,
    backward: ([Tensor], Tensor) -> [Tensor],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let output = forward(inputs)
    let projection = Tensor.sinusoid(output.shape, frequency: 0.713, phase: 0.29)
    let gradients = backward(inputs, projection)
    #expect(gradients.count == inputs.count, "backward returned \(gradients.count) gradients for \(inputs.count) inputs",
            sourceLocation: sourceLocation)
    func loss(_ values: [Tensor]) -> Double {
        let y = forward(values)
        var total = 0.0
        y.withUnsafeBufferPointer { yb in
            projection.withUnsafeBufferPointer { rb in
                for i in yb.indices { total += Double(yb[i]) * Double(rb[i]) }
            }
        }
        return total
    }
    for (index, input) in inputs.enumerated() where index < gradients.count {
        let analytic = gradients[index]
        #expect(analytic.shape == input.shape, "gradient \(index) has shape \(analytic.shape), input \(input.shape)",
                sourceLocation: sourceLocation)
        let scale = analytic.scalars.map { Double(abs($0)) }.max() ?? 0
        let count = input.elementCount
        let probes = min(count, probesPerInput)
        var worst = 0.0
        var failures: [String] = []
        for probe in 0..<probes {
            let element = probes == count ? probe : (probe * count) / probes + (probe * 7919) % max(1, count / probes)
            var plus = inputs, minus = inputs
            let x = input[flat: element]
            plus[index][flat: element] = x + epsilon
            minus[index][flat: element] = x - epsilon
            let step = Double(x + epsilon) - Double(x - epsilon)
            let numeric = (loss(plus) - loss(minus)) / step
            let exact = Double(analytic[flat: element])
            let error = abs(numeric - exact)
            let allowed = absoluteTolerance * scale + relativeTolerance * abs(exact)
            worst = max(worst, error / max(allowed, .leastNonzeroMagnitude))
            if error > allowed && failures.count < 5 {
                failures.append("input \(index) element \(element): numeric \(numeric), analytic \(exact)")
            }
        }
        #expect(failures.isEmpty, "finite differences disagree (worst error/allowed \(worst)): \(failures.joined(separator: "; "))",
                sourceLocation: sourceLocation)
    }
}

/// Expects `actual` and `expected` to have equal shapes and
/// |a − e| ≤ absoluteTolerance + relativeTolerance·|e| elementwise.
public func expectClose(
    _ actual: Tensor, _ expected: Tensor, absoluteTolerance: Float, relativeTolerance: Float = 0,
    _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.shape == expected.shape, "\(comment) shape \(actual.shape) ≠ \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    var worstIndex = -1
    var worstExcess: Float = 0
    actual.withUnsafeBufferPointer { a in
        expected.withUnsafeBufferPointer { e in
            for i in a.indices {
                let allowed = absoluteTolerance + relativeTolerance * abs(e[i])
                let error = abs(a[i] - e[i])
                if !(error <= allowed), worstIndex < 0 || error - allowed > worstExcess {
                    worstIndex = i
                    worstExcess = error - allowed
                }
            }
        }
    }
    if worstIndex >= 0 {
        Issue.record("\(comment) element \(worstIndex): \(actual[flat: worstIndex]) vs expected \(expected[flat: worstIndex]) (tolerance \(absoluteTolerance) + \(relativeTolerance)·|e|)",
                     sourceLocation: sourceLocation)
    }
}

/// max |x| over a tensor.
public func maximumMagnitude(_ tensor: Tensor) -> Float {
    tensor.scalars.map { abs($0) }.max() ?? 0
}

/// max |a − b| over two tensors of the same shape.
public func maximumDifference(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "maximumDifference of \(a.shape) and \(b.shape)")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}
