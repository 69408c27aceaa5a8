/// Batch normalization over channels: `weight` (γ), `bias` (β) trainable;
/// `running_mean`, `running_var` buffers. ε = 1e-5.
///
/// Training: normalizes with the batch statistics and records them in the
/// context, which the training step folds into the running buffers after
/// the step; `forward` itself never mutates the store. Inference: uses the
/// running statistics.
public struct BatchNorm2d: Sendable {
    public let channels: Int
    public let weight: ParameterID
    public let bias: ParameterID
    public let runningMean: ParameterID
    public let runningVariance: ParameterID

    public struct Cache: Sendable {
        let input: Tensor
        let statistics: BatchNormStatistics
        /// The fused ReLU's output, when the forward applied one (nil when
        /// the caller dropped it to recompute it: `recomputedReLUOutput`).
        let reluOutput: Tensor?

        /// This cache without the ReLU output, for a caller that recomputes
        /// it in the backward instead of keeping it alive until then.
        func withoutReLUOutput() -> Cache { Cache(input: input, statistics: statistics, reluOutput: nil) }

        /// This cache with a (recomputed) ReLU output.
        func with(reluOutput: Tensor) -> Cache { Cache(input: input, statistics: statistics, reluOutput: reluOutput) }
    }

    /// Registers `NAME.weight` (1), `NAME.bias` (0), `NAME.running_mean` (0), `NAME.running_var` (1).
    public init(channels: Int, name: String, builder: inout ParameterBuilder) {
        self.channels = channels
        (weight, bias, runningMean, runningVariance) = builder.scoped(name) { b in
            (b.add("weight", Tensor(shape: [channels], repeating: 1)),
             b.add("bias", .zeros([channels])),
             b.add("running_mean", .zeros([channels]), role: .buffer),
             b.add("running_var", Tensor(shape: [channels], repeating: 1), role: .buffer))
        }
    }

    /// y = BN(x), or max(BN(x), 0) with `relu` (one pass instead of two),
    /// through the Kernels API: batch statistics in training (reduced over
    /// the workers under syncbn), running statistics in inference.
    public func forward(
        _ x: Tensor, parameters: ParameterStore, context: ForwardContext, relu: Bool = false
    ) -> (Tensor, Cache?) {
        let s = x.shape
        precondition(s.rank == 4 && s.channels == channels, "BatchNorm2d expected \(channels) channels, got \(s)")
        switch context.mode {
        case .training:
            let (y, statistics) = batchNormTraining(x, scale: parameters[weight], shift: parameters[bias], relu: relu,
                                                    reduce: context.batchNormReduction)
            context.record(mean: runningMean, variance: runningVariance, statistics: statistics)
            return (y, Cache(input: x, statistics: statistics, reluOutput: relu ? y : nil))
        case .inference:
            let y = batchNormInference(x, scale: parameters[weight], shift: parameters[bias], runningMean: parameters[runningMean],
                                       runningVariance: parameters[runningVariance], relu: relu)
            return (y, nil)
        }
    }

    /// The output of a training forward with the fused ReLU, again, from
    /// the cache: the forward's bits (`batchNormTrainingOutput`), one pass.
    public func recomputedReLUOutput(_ cache: Cache, parameters: ParameterStore) -> Tensor {
        batchNormTrainingOutput(cache.input, scale: parameters[weight], shift: parameters[bias],
                                statistics: cache.statistics, relu: true)
    }

    /// The running statistics as one affine map per channel, y = x·scale +
    /// shift with scale = γ/√(σ² + ε) and shift = β − μ·scale, computed as the
    /// inference forward computes them; a convolution's epilogue applies it
    /// (`Conv2d.forward(_:parameters:context:scale:shift:residual:relu:)`).
    public func inferenceAffine(_ parameters: ParameterStore) -> (scale: Tensor, shift: Tensor) {
        let gamma = parameters[weight].scalars, beta = parameters[bias].scalars
        let mean = parameters[runningMean].scalars, variance = parameters[runningVariance].scalars
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            scale[c] = gamma[c] / (variance[c] + batchNormEpsilon).squareRoot()
            shift[c] = beta[c] - mean[c] * scale[c]
        }
        return (Tensor(shape: [channels], scalars: scale), Tensor(shape: [channels], scalars: shift))
    }

    /// Adds dγ, dβ into `gradients` and returns dx (a fresh tensor). With a
    /// fused ReLU in the forward, `dy` is the gradient of the ReLU's output.
    /// (A backward only follows a training-mode forward: inference keeps no cache.)
    public func backward(_ dy: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore) -> Tensor {
        var dg = gradients.take(weight), db = gradients.take(bias)
        let dx = batchNormTrainingBackward(dy, input: cache.input, scale: parameters[weight], statistics: cache.statistics,
                                           reluOutput: cache.reluOutput, scaleGradient: &dg, shiftGradient: &db,
                                           scaleGradientLow: gradients.lowParts?.pointer(weight),
                                           shiftGradientLow: gradients.lowParts?.pointer(bias))
        gradients.put(weight, dg)
        gradients.put(bias, db)
        return dx
    }
}
