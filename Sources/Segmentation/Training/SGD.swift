/// Stochastic gradient descent with momentum and weight decay, MXNet 1.x's
/// update (SPEC §5), per tensor with η = learning rate × the tensor's multiplier:
///
///     m ← μ·m − η·wd·w − η·g
///     w ← w + m
///
/// Only trainable tensors are updated; BN running statistics are not touched.
public struct SGD: Sendable {
    public var momentum: Float
    public var weightDecay: Float
    /// Momentum buffers, laid out like the parameters.
    public private(set) var velocity: ParameterStore

    public init(parameters: ParameterStore, momentum: Float = 0.9, weightDecay: Float = 1e-4) {
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocity = parameters.zerosLikeTrainable()
    }

    public mutating func update(_ parameters: inout ParameterStore, gradients: ParameterStore, learningRate: Float) {
        for id in parameters.ids where parameters.role(of: id) == .trainable {
            let eta = learningRate * parameters.learningRateMultipliers[id.index]
            var weight = parameters.take(id)
            var m = velocity.take(id)
            let (mu, decay) = (momentum, weightDecay)
            weight.withMutablePointer { w in
                m.withMutablePointer { v in
                    gradients[id].withPointer { g in
                        let count = gradients[id].elementCount
                        let (wp, vp, gp) = (SendablePointer(w), SendablePointer(v), SendablePointer(UnsafeMutablePointer(mutating: g)))
                        parallelFor((count + 65535) / 65536, minimumChunk: 4) { blocks in
                            for i in (blocks.lowerBound * 65536)..<min(count, blocks.upperBound * 65536) {
                                let step = mu * vp.base[i] - eta * decay * wp.base[i] - eta * gp.base[i]
                                vp.base[i] = step
                                wp.base[i] += step
                            }
                        }
                    }
                }
            }
            velocity.put(id, m)
            parameters.put(id, weight)
        }
    }
}
