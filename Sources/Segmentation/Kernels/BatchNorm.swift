import RealModule

// Batch normalization over NCHW, per channel.
//
// N batch, C channels, H·W plane; M = N·H·W values per channel.
// training:  μ = mean(x), σ² = mean((x − μ)²) (biased), x̂ = (x − μ)/√(σ² + ε),
//            y = γ·x̂ + β; the batch μ and σ² are returned for the running update.
// inference: y = γ·(x − running μ)/√(running σ² + ε) + β.
// Channel sums accumulate per plane in Float (vectorised) and across planes in Double.

/// Sums a per-channel statistics buffer over all data-parallel workers, in
/// place (syncbn, SPEC §10). The buffer holds C (or 2·C) Double sums followed
/// by the worker's value count; afterwards, the totals over every worker.
public typealias BatchNormReduction = @Sendable (UnsafeMutableBufferPointer<Double>) -> Void

/// Forward in training mode. Writes `output`, `mean[C]`, `variance[C]` (biased).
/// With `relu`, writes max(y, 0) instead (BN and ReLU fused in one pass).
///
/// With `reduce` (syncbn), the statistics cover every worker's batch: the
/// per-channel sums and the count are reduced, then the centered sums of
/// squares about the global mean (two passes, as with one worker, so N
/// workers compute what one worker with the whole batch computes).
func batchNormTrainingForward(
    output: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>,
    input: UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    batch: Int, channels: Int, plane: Int, epsilon: Float, relu: Bool = false, reduce: BatchNormReduction? = nil
) {
    let output = SendablePointer(output), mean = SendablePointer(mean), variance = SendablePointer(variance)
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let scale = SendablePointer(UnsafeMutablePointer(mutating: scale))
    let shift = SendablePointer(UnsafeMutablePointer(mutating: shift))
    let minimumChunk = max(1, 32768 / max(1, batch * plane))
    @inline(__always) func channelSum(_ c: Int) -> Double {
        var total = 0.0
        for n in 0..<batch { total += Double(relaxedSum(input.base + (n * channels + c) * plane, count: plane)) }
        return total
    }
    @inline(__always) func centeredSquares(_ c: Int, _ mu: Float) -> Double {
        var squares = 0.0
        for n in 0..<batch {
            let x = input.base + (n * channels + c) * plane
            var s: Float = 0
            for i in 0..<plane { let d = x[i] - mu; s = Relaxed.multiplyAdd(d, d, s) }
            squares += Double(s)
        }
        return squares
    }
    @inline(__always) func normalize(_ c: Int) {
        batchNormNormalizeChannel(c, output: output.base, input: input.base, scale: scale.base, shift: shift.base,
                                  mean: mean.base, variance: variance.base, batch: batch, channels: channels,
                                  plane: plane, epsilon: epsilon, relu: relu)
    }
    guard let reduce else {
        let count = Double(batch * plane)
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range {
                let mu = Float(channelSum(c) / count)
                mean.base[c] = mu
                variance.base[c] = Float(centeredSquares(c, mu) / count)
                normalize(c)
            }
        }
        return
    }
    // syncbn: [Σx per channel, count] summed over the workers, then [Σ(x − μ)² per channel, count].
    var sums = [Double](repeating: 0, count: channels + 1)
    sums.withUnsafeMutableBufferPointer { buffer in
        let sum = SendablePointer(buffer.baseAddress!)
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range { sum.base[c] = channelSum(c) }
        }
        buffer[channels] = Double(batch * plane)
        reduce(buffer)
        let count = buffer[channels]
        for c in 0..<channels { mean.base[c] = Float(buffer[c] / count) }
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range { sum.base[c] = centeredSquares(c, mean.base[c]) }
        }
        buffer[channels] = Double(batch * plane)
        reduce(buffer)
        for c in 0..<channels { variance.base[c] = Float(buffer[c] / buffer[channels]) }
    }
    parallelFor(channels, minimumChunk: minimumChunk) { range in
        for c in range { normalize(c) }
    }
}

/// The training forward's output pass over channel c of every sample: y =
/// x·a + b (max(y, 0) with `relu`), a = γ/√(σ² + ε), b = β − μ·a. Shared by
/// the forward and `batchNormTrainingOutput`, so an output recomputed in the
/// backward has the forward's bits.
@inline(__always)
func batchNormNormalizeChannel(
    _ c: Int, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
    shift: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
    batch: Int, channels: Int, plane: Int, epsilon: Float, relu: Bool
) {
    let a = scale[c] / (variance[c] + epsilon).squareRoot()
    let b = shift[c] - mean[c] * a
    for n in 0..<batch {
        let x = input + (n * channels + c) * plane
        let y = output + (n * channels + c) * plane
        if relu {
            for i in 0..<plane { y[i] = max(x[i] * a + b, 0) }
        } else {
            for i in 0..<plane { y[i] = x[i] * a + b }
        }
    }
}

/// Backward in training mode (batch statistics). Adds into each non-nil gradient.
///   dβ += Σ dy,  dγ += Σ dy·x̂,  dx += γ/√(σ²+ε) · (dy − Σdy/M − x̂·Σ(dy·x̂)/M)
///
/// Fused ReLU: with `reluOutput` (the forward's max(y, 0)), dy is first
/// masked to where that output is positive, so the ReLU's backward costs no
/// extra pass. With `overwriteInputGradient`, dx is written rather than
/// added to (for a fresh, uninitialized dx).
///
/// With `reduce` (syncbn), dx uses Σdy, Σdy·x̂ and M summed over every
/// worker, while dγ and dβ receive this worker's own sums: the gradient
/// all-reduce adds those up afterwards.
func batchNormTrainingBackward(
    inputGradient: UnsafeMutablePointer<Float>?, scaleGradient: UnsafeMutablePointer<Float>?,
    shiftGradient: UnsafeMutablePointer<Float>?,
    outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, variance: UnsafePointer<Float>,
    batch: Int, channels: Int, plane: Int, epsilon: Float,
    reluOutput: UnsafePointer<Float>? = nil, overwriteInputGradient: Bool = false, reduce: BatchNormReduction? = nil,
    scaleGradientLow: UnsafeMutablePointer<Float>? = nil, shiftGradientLow: UnsafeMutablePointer<Float>? = nil
) {
    let mask = reluOutput.map { SendablePointer(UnsafeMutablePointer(mutating: $0)) }
    let dgammaLow = scaleGradientLow.map { SendablePointer($0) }, dbetaLow = shiftGradientLow.map { SendablePointer($0) }
    let dx = inputGradient.map { SendablePointer($0) }
    let dgamma = scaleGradient.map { SendablePointer($0) }
    let dbeta = shiftGradient.map { SendablePointer($0) }
    let dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let scale = SendablePointer(UnsafeMutablePointer(mutating: scale))
    let mean = SendablePointer(UnsafeMutablePointer(mutating: mean))
    let variance = SendablePointer(UnsafeMutablePointer(mutating: variance))
    let minimumChunk = max(1, 32768 / max(1, batch * plane))
    /// (Σ dy, Σ dy·(x − μ)) of channel c over this worker's batch.
    @inline(__always) func channelSums(_ c: Int) -> (Double, Double) {
        let mu = mean.base[c]
        var sumDy = 0.0, sumDyCentered = 0.0
        for n in 0..<batch {
            let offset = (n * channels + c) * plane
            let g = dy.base + offset, x = input.base + offset
            if let mask {
                let y = UnsafePointer(mask.base + offset)
                var s8 = Float8(), t8 = Float8()
                let mu8 = Float8(repeating: mu)
                var i = 0
                while i + 8 <= plane {
                    let gi = where8(load8(g, i), positive: load8(y, i))
                    s8 += gi
                    t8 += gi * (load8(x, i) - mu8)
                    i += 8
                }
                var s = s8.sum(), t = t8.sum()
                while i < plane {
                    let gi: Float = y[i] > 0 ? g[i] : 0
                    s += gi
                    t += gi * (x[i] - mu)
                    i += 1
                }
                sumDy += Double(s)
                sumDyCentered += Double(t)
            } else {
                sumDy += Double(relaxedSum(g, count: plane))
                var s: Float = 0
                for i in 0..<plane { s = Relaxed.multiplyAdd(g[i], x[i] - mu, s) }
                sumDyCentered += Double(s)
            }
        }
        return (sumDy, sumDyCentered)
    }
    /// dx of channel c from the sums over `count` values.
    @inline(__always) func writeInputGradient(_ c: Int, sumDy: Double, sumDyCentered: Double, count: Double) {
        guard let dx else { return }
        let mu = mean.base[c]
        let invstd = 1 / (variance.base[c] + epsilon).squareRoot()
        let sumDyXhat = sumDyCentered * Double(invstd)
        let k = scale.base[c] * invstd
        let meanDy = Float(sumDy / count)
        let meanDyXhat = Float(sumDyXhat / count)
        // dx = k·(g − meanDy − x̂·meanDyXhat) = α·g + β·x + γ0 per element
        let alpha = k, beta = -k * invstd * meanDyXhat, gamma0 = -k * meanDy + k * invstd * meanDyXhat * mu
        for n in 0..<batch {
            let offset = (n * channels + c) * plane
            let g = dy.base + offset, x = input.base + offset, d = dx.base + offset
            switch (mask, overwriteInputGradient) {
            case (nil, false): for i in 0..<plane { d[i] += alpha * g[i] + beta * x[i] + gamma0 }
            case (nil, true): for i in 0..<plane { d[i] = alpha * g[i] + beta * x[i] + gamma0 }
            case (let mask?, let overwrite):
                let y = UnsafePointer(mask.base + offset)
                let (a8, b8, c8) = (Float8(repeating: alpha), Float8(repeating: beta), Float8(repeating: gamma0))
                var i = 0
                while i + 8 <= plane {
                    let value = a8 * where8(load8(g, i), positive: load8(y, i)) + b8 * load8(x, i) + c8
                    store8(overwrite ? value : value + load8(d, i), d, i)
                    i += 8
                }
                while i < plane {
                    let value = alpha * (y[i] > 0 ? g[i] : 0) + beta * x[i] + gamma0
                    d[i] = overwrite ? value : d[i] + value
                    i += 1
                }
            }
        }
    }
    /// dγ and dβ from this worker's sums; a data-parallel rank also keeps what
    /// their rounding dropped (`GradientLowParts`).
    @inline(__always) func addParameterGradients(_ c: Int, sumDy: Double, sumDyCentered: Double) {
        let invstd = 1 / (variance.base[c] + epsilon).squareRoot()
        let (beta, gamma) = (sumDy, sumDyCentered * Double(invstd))
        if let dbeta {
            let (high, low) = splitExactSum(beta)
            dbeta.base[c] += high
            if let dbetaLow { dbetaLow.base[c] += low }
        }
        if let dgamma {
            let (high, low) = splitExactSum(gamma)
            dgamma.base[c] += high
            if let dgammaLow { dgammaLow.base[c] += low }
        }
    }
    guard let reduce else {
        let count = Double(batch * plane)
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range {
                let (sumDy, sumDyCentered) = channelSums(c)
                addParameterGradients(c, sumDy: sumDy, sumDyCentered: sumDyCentered)
                writeInputGradient(c, sumDy: sumDy, sumDyCentered: sumDyCentered, count: count)
            }
        }
        return
    }
    // syncbn: [Σdy per channel, Σdy·(x − μ) per channel, count] summed over the workers.
    var sums = [Double](repeating: 0, count: 2 * channels + 1)
    sums.withUnsafeMutableBufferPointer { buffer in
        let sum = SendablePointer(buffer.baseAddress!)
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range {
                (sum.base[c], sum.base[channels + c]) = channelSums(c)
                addParameterGradients(c, sumDy: sum.base[c], sumDyCentered: sum.base[channels + c])
            }
        }
        buffer[2 * channels] = Double(batch * plane)
        reduce(buffer)
        parallelFor(channels, minimumChunk: minimumChunk) { range in
            for c in range {
                writeInputGradient(c, sumDy: sum.base[c], sumDyCentered: sum.base[channels + c], count: sum.base[2 * channels])
            }
        }
    }
}

/// Forward in inference mode with running statistics: y = x·a + b per channel
/// (max(y, 0) with `relu`).
func batchNormInferenceForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
    runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
    batch: Int, channels: Int, plane: Int, epsilon: Float, relu: Bool = false
) {
    let output = SendablePointer(output)
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let scale = SendablePointer(UnsafeMutablePointer(mutating: scale))
    let shift = SendablePointer(UnsafeMutablePointer(mutating: shift))
    let runningMean = SendablePointer(UnsafeMutablePointer(mutating: runningMean))
    let runningVariance = SendablePointer(UnsafeMutablePointer(mutating: runningVariance))
    parallelFor(batch * channels, minimumChunk: max(1, 65536 / max(1, plane))) { range in
        for nc in range {
            let c = nc % channels
            let a = scale.base[c] / (runningVariance.base[c] + epsilon).squareRoot()
            let b = shift.base[c] - runningMean.base[c] * a
            let x = input.base + nc * plane, y = output.base + nc * plane
            if relu {
                for i in 0..<plane { y[i] = max(x[i] * a + b, 0) }
            } else {
                for i in 0..<plane { y[i] = x[i] * a + b }
            }
        }
    }
}

/// Backward in inference mode (running statistics are constants).
///   dβ += Σ dy,  dγ += Σ dy·(x − μ)/√(σ²+ε),  dx += dy·γ/√(σ²+ε)
func batchNormInferenceBackward(
    inputGradient: UnsafeMutablePointer<Float>?, scaleGradient: UnsafeMutablePointer<Float>?,
    shiftGradient: UnsafeMutablePointer<Float>?,
    outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
    runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
    batch: Int, channels: Int, plane: Int, epsilon: Float
) {
    let dx = inputGradient.map { SendablePointer($0) }
    let dgamma = scaleGradient.map { SendablePointer($0) }
    let dbeta = shiftGradient.map { SendablePointer($0) }
    let dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let scale = SendablePointer(UnsafeMutablePointer(mutating: scale))
    let runningMean = SendablePointer(UnsafeMutablePointer(mutating: runningMean))
    let runningVariance = SendablePointer(UnsafeMutablePointer(mutating: runningVariance))
    parallelFor(channels, minimumChunk: max(1, 32768 / max(1, batch * plane))) { range in
        for c in range {
            let mu = runningMean.base[c]
            let invstd = 1 / (runningVariance.base[c] + epsilon).squareRoot()
            let k = scale.base[c] * invstd
            var sumDy = 0.0, sumDyCentered = 0.0
            for n in 0..<batch {
                let offset = (n * channels + c) * plane
                let g = dy.base + offset, x = input.base + offset
                sumDy += Double(relaxedSum(g, count: plane))
                var s: Float = 0
                for i in 0..<plane { s = Relaxed.multiplyAdd(g[i], x[i] - mu, s) }
                sumDyCentered += Double(s)
                if let dx {
                    let d = dx.base + offset
                    for i in 0..<plane { d[i] += g[i] * k }
                }
            }
            dbeta?.base[c] += Float(sumDy)
            dgamma?.base[c] += Float(sumDyCentered * Double(invstd))
        }
    }
}

// MARK: - Tensor API

/// Batch mean and biased variance of one training-mode forward, per channel.
public struct BatchNormStatistics: Sendable {
    public var mean: Tensor
    public var variance: Tensor
    /// syncbn: how the forward reduced its sums over the workers; the
    /// backward reduces its own the same way (nil: this worker's batch alone).
    public var reduction: BatchNormReduction?

    public init(mean: Tensor, variance: Tensor, reduction: BatchNormReduction? = nil) {
        self.mean = mean
        self.variance = variance
        self.reduction = reduction
    }
}

/// Batch normalization's ε: 1e-5 (GluonCV and torchvision).
public let batchNormEpsilon: Float = 1e-5

/// With `reduce` (syncbn) the statistics are over every worker's batch;
/// the returned statistics carry it to the backward. With `relu` the output
/// is max(BN(x), 0), in the same pass.
public func batchNormTraining(
    _ input: Tensor, scale: Tensor, shift: Tensor, epsilon: Float = batchNormEpsilon, relu: Bool = false,
    reduce: BatchNormReduction? = nil
) -> (output: Tensor, statistics: BatchNormStatistics) {
    let s = input.shape
    precondition(s.rank == 4 && scale.shape == [s.channels] && shift.shape == [s.channels],
                 "batch norm: input \(s), scale \(scale.shape), shift \(shift.shape)")
    var mean = Tensor.zeros([s.channels]), variance = Tensor.zeros([s.channels])
    let output = Tensor(shape: s) { y in
        input.withPointer { x in scale.withPointer { g in shift.withPointer { b in
            mean.withMutablePointer { m in variance.withMutablePointer { v in
                batchNormTrainingForward(
                    output: y.baseAddress!, mean: m, variance: v, input: x, scale: g, shift: b,
                    batch: s.batch, channels: s.channels, plane: s.height * s.width, epsilon: epsilon, relu: relu,
                    reduce: reduce)
            } }
        } } }
    }
    return (output, BatchNormStatistics(mean: mean, variance: variance, reduction: reduce))
}

/// The output of a training-mode forward again, from its input and the
/// statistics it returned: bit for bit what `batchNormTraining` wrote, so a
/// backward can recompute a ReLU output instead of keeping it.
public func batchNormTrainingOutput(
    _ input: Tensor, scale: Tensor, shift: Tensor, statistics: BatchNormStatistics, epsilon: Float = batchNormEpsilon,
    relu: Bool = false
) -> Tensor {
    let s = input.shape
    precondition(s.rank == 4 && scale.shape == [s.channels] && shift.shape == [s.channels]
                 && statistics.mean.shape == [s.channels] && statistics.variance.shape == [s.channels],
                 "batch norm: input \(s), scale \(scale.shape), shift \(shift.shape)")
    return Tensor(shape: s) { y in
        input.withPointer { x in scale.withPointer { g in shift.withPointer { b in
            statistics.mean.withPointer { m in statistics.variance.withPointer { v in
                let (y, x, g, b) = (SendablePointer(y.baseAddress!), SendablePointer(UnsafeMutablePointer(mutating: x)),
                                    SendablePointer(UnsafeMutablePointer(mutating: g)),
                                    SendablePointer(UnsafeMutablePointer(mutating: b)))
                let (m, v) = (SendablePointer(UnsafeMutablePointer(mutating: m)), SendablePointer(UnsafeMutablePointer(mutating: v)))
                parallelFor(s.channels, minimumChunk: max(1, 32768 / max(1, s.batch * s.height * s.width))) { range in
                    for c in range {
                        batchNormNormalizeChannel(c, output: y.base, input: x.base, scale: g.base, shift: b.base,
                                                  mean: m.base, variance: v.base, batch: s.batch, channels: s.channels,
                                                  plane: s.height * s.width, epsilon: epsilon, relu: relu)
                    }
                }
            } }
        } } }
    }
}

/// The backward of a training-mode forward into a fresh dx (returned), adding
/// dγ and dβ into `scaleGradient` and `shiftGradient`. With `reluOutput`
/// (the forward's max(BN(x), 0) when it fused the ReLU), `outputGradient` is
/// the gradient of that output and is masked in the same pass.
public func batchNormTrainingBackward(
    _ outputGradient: Tensor, input: Tensor, scale: Tensor, statistics: BatchNormStatistics, reluOutput: Tensor? = nil,
    scaleGradient: inout Tensor, shiftGradient: inout Tensor, epsilon: Float = batchNormEpsilon,
    scaleGradientLow: UnsafeMutablePointer<Float>? = nil, shiftGradientLow: UnsafeMutablePointer<Float>? = nil
) -> Tensor {
    let s = input.shape
    precondition(outputGradient.shape == s && reluOutput.map { $0.shape == s } ?? true
                 && scaleGradient.shape == [s.channels] && shiftGradient.shape == [s.channels])
    return Tensor(shape: s) { dx in
        scaleGradient.withMutablePointer { dg in shiftGradient.withMutablePointer { db in
            outputGradient.withPointer { dy in input.withPointer { x in scale.withPointer { g in
                statistics.mean.withPointer { m in statistics.variance.withPointer { v in
                    func run(_ mask: UnsafePointer<Float>?) {
                        batchNormTrainingBackward(
                            inputGradient: dx.baseAddress!, scaleGradient: dg, shiftGradient: db,
                            outputGradient: dy, input: x, scale: g, mean: m, variance: v,
                            batch: s.batch, channels: s.channels, plane: s.height * s.width, epsilon: epsilon,
                            reluOutput: mask, overwriteInputGradient: true, reduce: statistics.reduction,
                            scaleGradientLow: scaleGradientLow, shiftGradientLow: shiftGradientLow)
                    }
                    if let reluOutput { reluOutput.withPointer { run($0) } } else { run(nil) }
                } }
            } } }
        } }
    }
}

public func batchNormTrainingBackward(
    inputGradient: inout Tensor?, scaleGradient: inout Tensor?, shiftGradient: inout Tensor?,
    outputGradient: Tensor, input: Tensor, scale: Tensor, statistics: BatchNormStatistics,
    epsilon: Float = batchNormEpsilon
) {
    let s = input.shape
    precondition(outputGradient.shape == s && (inputGradient == nil || inputGradient!.shape == s))
    outputGradient.withPointer { dy in input.withPointer { x in scale.withPointer { g in
        statistics.mean.withPointer { m in statistics.variance.withPointer { v in
            inputGradient.withUnsafeMutablePointerIfPresent { dx in
                scaleGradient.withUnsafeMutablePointerIfPresent { dg in
                    shiftGradient.withUnsafeMutablePointerIfPresent { db in
                        batchNormTrainingBackward(
                            inputGradient: dx, scaleGradient: dg, shiftGradient: db,
                            outputGradient: dy, input: x, scale: g, mean: m, variance: v,
                            batch: s.batch, channels: s.channels, plane: s.height * s.width, epsilon: epsilon,
                            reduce: statistics.reduction)
                    }
                }
            }
        } }
    } } }
}

/// With `relu` the output is max(BN(x), 0), in the same pass.
public func batchNormInference(
    _ input: Tensor, scale: Tensor, shift: Tensor, runningMean: Tensor, runningVariance: Tensor,
    epsilon: Float = batchNormEpsilon, relu: Bool = false
) -> Tensor {
    let s = input.shape
    precondition(s.rank == 4 && scale.shape == [s.channels] && runningMean.shape == [s.channels])
    return Tensor(shape: s) { y in
        input.withPointer { x in scale.withPointer { g in shift.withPointer { b in
            runningMean.withPointer { m in runningVariance.withPointer { v in
                batchNormInferenceForward(
                    output: y.baseAddress!, input: x, scale: g, shift: b, runningMean: m, runningVariance: v,
                    batch: s.batch, channels: s.channels, plane: s.height * s.width, epsilon: epsilon, relu: relu)
            } }
        } } }
    }
}

public func batchNormInferenceBackward(
    inputGradient: inout Tensor?, scaleGradient: inout Tensor?, shiftGradient: inout Tensor?,
    outputGradient: Tensor, input: Tensor, scale: Tensor, runningMean: Tensor, runningVariance: Tensor,
    epsilon: Float = batchNormEpsilon
) {
    let s = input.shape
    precondition(outputGradient.shape == s && (inputGradient == nil || inputGradient!.shape == s))
    outputGradient.withPointer { dy in input.withPointer { x in scale.withPointer { g in
        runningMean.withPointer { m in runningVariance.withPointer { v in
            inputGradient.withUnsafeMutablePointerIfPresent { dx in
                scaleGradient.withUnsafeMutablePointerIfPresent { dg in
                    shiftGradient.withUnsafeMutablePointerIfPresent { db in
                        batchNormInferenceBackward(
                            inputGradient: dx, scaleGradient: dg, shiftGradient: db,
                            outputGradient: dy, input: x, scale: g, runningMean: m, runningVariance: v,
                            batch: s.batch, channels: s.channels, plane: s.height * s.width, epsilon: epsilon)
                    }
                }
            }
        } }
    } } }
}

/// Folds one batch's statistics into the running buffers:
/// r ← (1 − momentum)·r + momentum·batch, momentum 0.1 (SPEC §5; biased variance).
public func updateRunningStatistics(
    runningMean: inout Tensor, runningVariance: inout Tensor, batch: BatchNormStatistics, momentum: Float = 0.1
) {
    precondition(runningMean.shape == batch.mean.shape && runningVariance.shape == batch.variance.shape)
    runningMean.withMutablePointer { r in batch.mean.withPointer { b in
        for c in 0..<batch.mean.elementCount { r[c] = (1 - momentum) * r[c] + momentum * b[c] }
    } }
    runningVariance.withMutablePointer { r in batch.variance.withPointer { b in
        for c in 0..<batch.variance.elementCount { r[c] = (1 - momentum) * r[c] + momentum * b[c] }
    } }
}
