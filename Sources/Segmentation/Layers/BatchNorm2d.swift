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
        /// The fused ReLU's output, when the forward applied one.
        let reluOutput: Tensor?
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

    /// y = BN(x), or max(BN(x), 0) with `relu` (one pass instead of two).
    public func forward(
        _ x: Tensor, parameters: ParameterStore, context: ForwardContext, relu: Bool = false
    ) -> (Tensor, Cache?) {
        let s = x.shape
        precondition(s.rank == 4 && s.channels == channels, "BatchNorm2d expected \(channels) channels, got \(s)")
        let (scale, shift) = (parameters[weight], parameters[bias])
        switch context.mode {
        case .training:
            var mean = Tensor.zeros([channels]), variance = Tensor.zeros([channels])
            let y = Tensor(shape: s) { out in
                x.withPointer { xp in scale.withPointer { g in shift.withPointer { b in
                    mean.withMutablePointer { m in variance.withMutablePointer { v in
                        batchNormTrainingForward(
                            output: out.baseAddress!, mean: m, variance: v, input: xp, scale: g, shift: b,
                            batch: s.batch, channels: channels, plane: s.height * s.width, epsilon: batchNormEpsilon,
                            relu: relu, reduce: context.batchNormReduction)
                    } }
                } } }
            }
            let statistics = BatchNormStatistics(mean: mean, variance: variance, reduction: context.batchNormReduction)
            context.record(mean: runningMean, variance: runningVariance, statistics: statistics)
            return (y, Cache(input: x, statistics: statistics, reluOutput: relu ? y : nil))
        case .inference:
            let (mean, variance) = (parameters[runningMean], parameters[runningVariance])
            let y = Tensor(shape: s) { out in
                x.withPointer { xp in scale.withPointer { g in shift.withPointer { b in
                    mean.withPointer { m in variance.withPointer { v in
                        batchNormInferenceForward(
                            output: out.baseAddress!, input: xp, scale: g, shift: b, runningMean: m, runningVariance: v,
                            batch: s.batch, channels: channels, plane: s.height * s.width, epsilon: batchNormEpsilon,
                            relu: relu)
                    } }
                } } }
            }
            return (y, nil)
        }
    }

    /// Adds dγ, dβ into `gradients` and returns dx (a fresh tensor). With a
    /// fused ReLU in the forward, `dy` is the gradient of the ReLU's output.
    public func backward(_ dy: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore) -> Tensor {
        let s = cache.input.shape
        var dg = gradients.take(weight), db = gradients.take(bias)
        let dx: Tensor
        if let statistics = cache.statistics {
            dx = Tensor(shape: s) { out in
                dg.withMutablePointer { dgp in db.withMutablePointer { dbp in
                    dy.withPointer { g in cache.input.withPointer { x in parameters[weight].withPointer { gamma in
                        statistics.mean.withPointer { m in statistics.variance.withPointer { v in
                            func run(_ mask: UnsafePointer<Float>?) {
                                batchNormTrainingBackward(
                                    inputGradient: out.baseAddress!, scaleGradient: dgp, shiftGradient: dbp,
                                    outputGradient: g, input: x, scale: gamma, mean: m, variance: v,
                                    batch: s.batch, channels: channels, plane: s.height * s.width, epsilon: batchNormEpsilon,
                                    reluOutput: mask, overwriteInputGradient: true, reduce: statistics.reduction)
                            }
                            if let y = cache.reluOutput { y.withPointer { run($0) } } else { run(nil) }
                        } }
                    } } }
                } }
            }
        } else {
            // Inference-mode statistics (frozen BN): unfused path.
            let masked = cache.reluOutput.map { ReLU().backward(dy, output: $0) } ?? dy
            var dxOptional: Tensor? = .zeros(s)
            var dgOptional: Tensor? = dg, dbOptional: Tensor? = db
            batchNormInferenceBackward(inputGradient: &dxOptional, scaleGradient: &dgOptional, shiftGradient: &dbOptional,
                                       outputGradient: masked, input: cache.input, scale: parameters[weight],
                                       runningMean: parameters[runningMean], runningVariance: parameters[runningVariance])
            dx = dxOptional!
            dg = dgOptional!
            db = dbOptional!
        }
        gradients.put(weight, dg)
        gradients.put(bias, db)
        return dx
    }
}
