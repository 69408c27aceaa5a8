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
        let statistics: BatchNormStatistics?
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

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        precondition(x.shape.channels == channels, "BatchNorm2d expected \(channels) channels, got \(x.shape)")
        switch context.mode {
        case .training:
            let (y, statistics) = batchNormTraining(x, scale: parameters[weight], shift: parameters[bias])
            context.record(mean: runningMean, variance: runningVariance, statistics: statistics)
            return (y, Cache(input: x, statistics: statistics))
        case .inference:
            let y = batchNormInference(x, scale: parameters[weight], shift: parameters[bias],
                                       runningMean: parameters[runningMean], runningVariance: parameters[runningVariance])
            return (y, nil)
        }
    }

    /// Adds dγ, dβ into `gradients` and returns dx (training-mode statistics).
    public func backward(_ dy: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore) -> Tensor {
        var dx: Tensor? = .zeros(cache.input.shape)
        var dg: Tensor? = gradients.take(weight)
        var db: Tensor? = gradients.take(bias)
        if let statistics = cache.statistics {
            batchNormTrainingBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db, outputGradient: dy,
                                      input: cache.input, scale: parameters[weight], statistics: statistics)
        } else {
            batchNormInferenceBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db, outputGradient: dy,
                                       input: cache.input, scale: parameters[weight],
                                       runningMean: parameters[runningMean], runningVariance: parameters[runningVariance])
        }
        gradients.put(weight, dg!)
        gradients.put(bias, db!)
        return dx!
    }
}
