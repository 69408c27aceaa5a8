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

    /// Unset values take the hyperparameters' defaults (`TrainingConfiguration.defaults`).
    public init(
        _ kind: OptimizerKind, parameters: ParameterStore,
        momentum: Float = Float(TrainingConfiguration.defaults.momentum),
        weightDecay: Float = Float(TrainingConfiguration.defaults.weightDecay),
        gamma1: Float = Float(TrainingConfiguration.defaults.gamma1),
        gamma2: Float = Float(TrainingConfiguration.defaults.gamma2)
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

    /// Whether the weight step needs only the updated state and not the
    /// gradient (sgd, adam). Then a step can fold each gradient into the
    /// state as soon as the backward finishes it (`absorb`) and move the
    /// weights after the backward (`applyAbsorbed`), with the bits of
    /// `update`, and never hold every gradient at once.
    public var absorbsGradients: Bool { kind == .sgd || kind == .adam }

    /// `update`'s first half for one trainable tensor: folds `gradient` into
    /// the state (sgd: m ← μ·m − η·wd·w − η·g; adam: the two moments). Call
    /// it once per trainable tensor and step, then `applyAbsorbed`.
    public mutating func absorb(_ id: ParameterID, gradient: Tensor, parameters: ParameterStore, learningRate: Double) {
        precondition(absorbsGradients, "\(kind) needs the gradient in its weight step; use update")
        let weight = parameters[id]
        precondition(gradient.shape == weight.shape, "gradient \(gradient.shape) for weight \(weight.shape)")
        let eta = Float(learningRate) * parameters.learningRateMultipliers[id.index]
        let (kind, mu, wd) = (self.kind, momentum, weightDecay)
        let count = weight.elementCount
        var s1 = firstState.take(id)
        var s2 = kind == .adam ? secondState.take(id) : Tensor.zeros([0])
        s1.withMutablePointer { a in s2.withMutablePointer { b in weight.withPointer { w in gradient.withPointer { g in
            let (a, b) = (SendablePointer(a), SendablePointer(b))
            let (w, g) = (SendablePointer(UnsafeMutablePointer(mutating: w)), SendablePointer(UnsafeMutablePointer(mutating: g)))
            Self.forEachBlock(of: count) { range in
                if kind == .sgd {
                    sgdMomentumUpdate(weight: w.base, momentum: a.base, gradient: g.base, range: range, eta: eta, mu: mu,
                                      weightDecay: wd)
                } else {
                    adamMomentsUpdate(first: a.base, second: b.base, gradient: g.base, range: range,
                                      beta1: Self.adamBeta1, beta2: Self.adamBeta2)
                }
            }
        } } } }
        firstState.put(id, s1)
        if kind == .adam { secondState.put(id, s2) }
    }

    /// `update`'s second half: moves every trainable weight by the state
    /// `absorb` updated (sgd: w ← w + m; adam: w ← w − η_t·m/(√v + ε)), and
    /// counts the step.
    public mutating func applyAbsorbed(to parameters: inout ParameterStore, learningRate: Double) {
        precondition(absorbsGradients, "\(kind) needs the gradient in its weight step; use update")
        step += 1
        let t = Float(step)
        let kind = self.kind
        let adamScale = (1 - Float.pow(Self.adamBeta2, t)).squareRoot() / (1 - Float.pow(Self.adamBeta1, t))
        for id in parameters.ids where parameters.role(of: id) == .trainable {
            let etaT = Float(learningRate) * parameters.learningRateMultipliers[id.index] * adamScale
            var weight = parameters.take(id)
            let count = weight.elementCount
            weight.withMutablePointer { w in firstState[id].withPointer { a in
                let second = kind == .adam ? secondState[id] : Tensor.zeros([0])
                second.withPointer { b in
                    let (w, a, b) = (SendablePointer(w), SendablePointer(UnsafeMutablePointer(mutating: a)),
                                     SendablePointer(UnsafeMutablePointer(mutating: b)))
                    Self.forEachBlock(of: count) { range in
                        if kind == .sgd {
                            sgdWeightUpdate(weight: w.base, momentum: a.base, range: range)
                        } else {
                            adamWeightUpdate(weight: w.base, first: a.base, second: b.base, range: range, etaT: etaT,
                                             epsilon: Self.adamEpsilon)
                        }
                    }
                }
            } }
            parameters.put(id, weight)
        }
    }

    /// This optimizer, leaving one with no state behind, so that the state
    /// changes hands without a copy-on-write copy; give it back after.
    mutating func take() -> Optimizer {
        let taken = self
        (firstState, secondState, thirdState) = (ParameterStore(), ParameterStore(), ParameterStore())
        return taken
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
                    Self.forEachBlock(of: count) { range in
                        switch kind {
                        case .sgd:
                            sgdUpdate(weight: w.base, momentum: a.base, gradient: g.base, range: range, eta: eta, mu: mu, weightDecay: wd)
                        case .nag:
                            nagUpdate(weight: w.base, momentum: a.base, gradient: g.base, range: range, eta: eta, mu: mu, weightDecay: wd)
                        case .adam:
                            adamUpdate(weight: w.base, first: a.base, second: b.base, gradient: g.base, range: range,
                                       etaT: eta * adamScale, beta1: Self.adamBeta1, beta2: Self.adamBeta2, epsilon: Self.adamEpsilon)
                        case .adagrad:
                            adagradUpdate(weight: w.base, history: a.base, gradient: g.base, range: range, eta: eta,
                                          epsilon: Self.adagradEpsilon)
                        case .rmsprop:
                            rmspropUpdate(weight: w.base, meanSquare: a.base, mean: b.base, delta: c.base, gradient: g.base,
                                          range: range, eta: eta, gamma1: g1, gamma2: g2, epsilon: Self.rmspropEpsilon)
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

    /// Runs `body` on consecutive ranges of 64 Ki elements of `0..<count`,
    /// split over the workers: the element-wise updates' loop.
    private static func forEachBlock(of count: Int, _ body: (Range<Int>) -> Void) {
        parallelFor((count + 65535) / 65536, minimumChunk: 4) { blocks in
            body((blocks.lowerBound * 65536)..<min(count, blocks.upperBound * 65536))
        }
    }
}
