import RealModule

/// The five optimizers of SPEC §5, with MXNet 1.x's update rules. Per tensor,
/// η = learning rate × the tensor's multiplier (10 for heads); g = gradient,
/// w = weight. Only trainable tensors are updated.
///
///     sgd      m ← μ·m − η·wd·w − η·g;  w ← w + m
///     nag      ĝ = g + wd·w;  m ← μ·m + ĝ;  w ← w − η·(ĝ + μ·m)
///     adam     m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  w ← w − η_t·m/(√v + ε),
///              η_t = η·√(1−β2ᵗ)/(1−β1ᵗ);  β1 0.9, β2 0.999, ε 1e-8
///     adagrad  h ← h + g²;  w ← w − η·g/√(h + ε);  ε 1e-7
///     rmsprop  (centered, Graves) n ← (1−γ1)·g² + γ1·n;  ḡ ← (1−γ1)·g + γ1·ḡ;
///              Δ ← γ2·Δ − η·g/√(n − ḡ² + ε);  w ← w + Δ;  ε 1e-8
///
/// momentum and weight_decay apply to sgd and nag only, as SageMaker documents.
/// State tensors are laid out like the parameters (same IDs).
public struct Optimizer: Sendable {
    public let kind: OptimizerKind
    public var momentum: Float
    public var weightDecay: Float
    public var gamma1: Float
    public var gamma2: Float
    public static let adamBeta1: Float = 0.9
    public static let adamBeta2: Float = 0.999
    public static let adamEpsilon: Float = 1e-8
    public static let adagradEpsilon: Float = 1e-7
    public static let rmspropEpsilon: Float = 1e-8

    /// Updates applied so far (Adam's t).
    public private(set) var step = 0
    /// sgd/nag: momentum m; adam: first moment m; adagrad: h; rmsprop: n.
    public private(set) var firstState: ParameterStore
    /// adam: v; rmsprop: ḡ. Empty for the others.
    public private(set) var secondState: ParameterStore
    /// rmsprop: Δ. Empty for the others.
    public private(set) var thirdState: ParameterStore

    public init(
        _ kind: OptimizerKind, parameters: ParameterStore, momentum: Float = 0.9, weightDecay: Float = 1e-4,
        gamma1: Float = 0.9, gamma2: Float = 0.9
    ) {
        self.kind = kind
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        let zeros = parameters.zerosLikeTrainable()
        let none = ParameterStore()
        firstState = zeros
        secondState = kind == .adam || kind == .rmsprop ? zeros : none
        thirdState = kind == .rmsprop ? zeros : none
    }

    public init(configuration c: TrainingConfiguration, parameters: ParameterStore) {
        self.init(c.optimizer, parameters: parameters, momentum: Float(c.momentum), weightDecay: Float(c.weightDecay),
                  gamma1: Float(c.gamma1), gamma2: Float(c.gamma2))
    }

    /// Restores saved state (a checkpoint's), which must have this optimizer's layout.
    public mutating func restore(step: Int, first: ParameterStore, second: ParameterStore, third: ParameterStore) {
        precondition(first.names == firstState.names && second.names == secondState.names && third.names == thirdState.names,
                     "optimizer state of another layout")
        self.step = step
        firstState = first
        secondState = second
        thirdState = third
    }

    public mutating func update(_ parameters: inout ParameterStore, gradients: ParameterStore, learningRate: Double) {
        step += 1
        let t = Float(step)
        let (kind, mu, wd, g1, g2) = (self.kind, momentum, weightDecay, gamma1, gamma2)
        let adamScale = (1 - Float.pow(Self.adamBeta2, t)).squareRoot() / (1 - Float.pow(Self.adamBeta1, t))
        for id in parameters.ids where parameters.role(of: id) == .trainable {
            let eta = Float(learningRate) * parameters.learningRateMultipliers[id.index]
            var weight = parameters.take(id)
            var s1 = firstState.take(id)
            var s2 = secondState.count > 0 ? secondState.take(id) : Tensor.zeros([0])
            var s3 = thirdState.count > 0 ? thirdState.take(id) : Tensor.zeros([0])
            let count = weight.elementCount
            weight.withMutablePointer { w in s1.withMutablePointer { a in s2.withMutablePointer { b in s3.withMutablePointer { c in
                gradients[id].withPointer { g in
                    let (w, a, b, c, g) = (SendablePointer(w), SendablePointer(a), SendablePointer(b), SendablePointer(c),
                                           SendablePointer(UnsafeMutablePointer(mutating: g)))
                    parallelFor((count + 65535) / 65536, minimumChunk: 4) { blocks in
                        let range = (blocks.lowerBound * 65536)..<min(count, blocks.upperBound * 65536)
                        switch kind {
                        case .sgd:
                            for i in range {
                                let m = mu * a.base[i] - eta * wd * w.base[i] - eta * g.base[i]
                                a.base[i] = m
                                w.base[i] += m
                            }
                        case .nag:
                            for i in range {
                                let gHat = g.base[i] + wd * w.base[i]
                                let m = mu * a.base[i] + gHat
                                a.base[i] = m
                                w.base[i] -= eta * (gHat + mu * m)
                            }
                        case .adam:
                            let etaT = eta * adamScale
                            for i in range {
                                let gi = g.base[i]
                                let m = Self.adamBeta1 * a.base[i] + (1 - Self.adamBeta1) * gi
                                let v = Self.adamBeta2 * b.base[i] + (1 - Self.adamBeta2) * gi * gi
                                a.base[i] = m
                                b.base[i] = v
                                w.base[i] -= etaT * m / (v.squareRoot() + Self.adamEpsilon)
                            }
                        case .adagrad:
                            for i in range {
                                let gi = g.base[i]
                                let h = a.base[i] + gi * gi
                                a.base[i] = h
                                w.base[i] -= eta * gi / (h + Self.adagradEpsilon).squareRoot()
                            }
                        case .rmsprop:
                            for i in range {
                                let gi = g.base[i]
                                let n = (1 - g1) * gi * gi + g1 * a.base[i]
                                let mean = (1 - g1) * gi + g1 * b.base[i]
                                let delta = g2 * c.base[i] - eta * gi / (n - mean * mean + Self.rmspropEpsilon).squareRoot()
                                a.base[i] = n
                                b.base[i] = mean
                                c.base[i] = delta
                                w.base[i] += delta
                            }
                        }
                    }
                }
            } } } }
            parameters.put(id, weight)
            firstState.put(id, s1)
            if secondState.count > 0 { secondState.put(id, s2) }
            if thirdState.count > 0 { thirdState.put(id, s3) }
        }
    }
}
