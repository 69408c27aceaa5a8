/// Identifies one tensor in a `ParameterStore`: its registration index.
public struct ParameterID: Hashable, Sendable, Comparable {
    public let index: Int
    public static func < (a: ParameterID, b: ParameterID) -> Bool { a.index < b.index }
}

/// What a stored tensor is for.
public enum ParameterRole: Sendable, Hashable {
    /// Learned by the optimizer (convolution weights and biases, BN γ and β).
    case trainable
    /// Carried state that the training step updates outside the optimizer
    /// (BN running mean and variance).
    case buffer
}

/// Told when a layer's backward puts a gradient back into a gradient store.
/// A backward puts each gradient back once, when it is final (no parameter
/// is used twice in a network), so data-parallel training can start summing
/// it over the workers while the rest of the backward runs, and a
/// single-process step can fold it into the optimizer's state at once
/// instead of keeping every gradient until the backward ends.
public protocol GradientObserver: AnyObject, Sendable {
    /// Returns whether the store keeps the gradient (`.release`: the
    /// observer has used it, and the store frees it).
    func gradientIsFinal(_ id: ParameterID, _ gradient: Tensor) -> GradientDisposition
}

/// What a gradient store does with a gradient once its observer has seen it.
public enum GradientDisposition: Sendable {
    case keep
    case release
}

/// Named tensors in registration order: a network's parameters and buffers,
/// and, with the same IDs and names, its gradients and optimizer state.
///
/// Names are state-dict style (`backbone.layer3.4.conv2.weight`) and stable:
/// they are the keys of the safetensors weight files.
public struct ParameterStore: Sendable {
    public private(set) var names: [String] = []
    public private(set) var roles: [ParameterRole] = []
    /// Learning-rate multiplier per tensor: 10 for the heads (GluonCV `lr_mult`), 1 elsewhere.
    public private(set) var learningRateMultipliers: [Float] = []
    public var tensors: [Tensor] = []
    private var indexByName: [String: Int] = [:]
    /// For a gradient store: told of every `put` (see `GradientObserver`).
    public var gradientObserver: (any GradientObserver)?
    /// For a data-parallel rank's gradient store: where layers add the parts
    /// of their gradients that rounding to float dropped (`GradientLowParts`).
    public var lowParts: GradientLowParts?
    /// For a gradient store whose trainable tensors were released
    /// (`releaseTrainable`): their shapes, so `take` can hand out zeros.
    private var releasedShapes: [Shape]?

    public init() {}

    public var count: Int { names.count }
    public var ids: [ParameterID] { names.indices.map { ParameterID(index: $0) } }

    public subscript(id: ParameterID) -> Tensor {
        get { tensors[id.index] }
        set {
            precondition(newValue.shape == tensors[id.index].shape,
                         "\(names[id.index]): shape \(newValue.shape) ≠ \(tensors[id.index].shape)")
            tensors[id.index] = newValue
        }
    }

    public func id(named name: String) -> ParameterID? {
        indexByName[name].map { ParameterID(index: $0) }
    }

    public func name(of id: ParameterID) -> String { names[id.index] }
    public func role(of id: ParameterID) -> ParameterRole { roles[id.index] }

    /// Moves a tensor out of the store (leaving an empty placeholder) so the
    /// caller can mutate it without a copy-on-write copy; `put` it back after.
    /// A released trainable tensor (`releaseTrainable`) comes out as zeros
    /// of its shape, allocated now.
    public mutating func take(_ id: ParameterID) -> Tensor {
        let tensor = tensors[id.index]
        tensors[id.index] = Self.placeholder
        return zerosIfReleased(id.index, tensor) ?? tensor
    }

    /// Zeros of a released tensor's shape, when `tensor` is its placeholder.
    private func zerosIfReleased(_ index: Int, _ tensor: Tensor) -> Tensor? {
        guard tensor.elementCount == 0, let shape = releasedShapes?[index], shape.elementCount > 0 else { return nil }
        return .zeros(shape)
    }

    /// Returns a tensor taken with `take`. A gradient store's observer may
    /// have it released instead of kept.
    public mutating func put(_ id: ParameterID, _ tensor: Tensor) {
        if let gradientObserver, gradientObserver.gradientIsFinal(id, tensor) == .release {
            precondition(releasedShapes != nil, "an observer released a gradient of a store that cannot hand out zeros")
            tensors[id.index] = Self.placeholder
        } else {
            tensors[id.index] = tensor
        }
    }

    private static let placeholder = Tensor.zeros([0])

    /// Registers a tensor; names must be unique.
    @discardableResult
    public mutating func append(
        name: String, tensor: Tensor, role: ParameterRole, learningRateMultiplier: Float = 1
    ) -> ParameterID {
        precondition(indexByName[name] == nil, "duplicate parameter name \(name)")
        indexByName[name] = names.count
        names.append(name)
        roles.append(role)
        learningRateMultipliers.append(learningRateMultiplier)
        tensors.append(tensor)
        return ParameterID(index: names.count - 1)
    }

    /// Number of trainable scalars (what papers and `torch` count as parameters).
    public var trainableParameterCount: Int {
        zip(tensors, roles).reduce(0) { $0 + ($1.1 == .trainable ? $1.0.elementCount : 0) }
    }

    /// Trainable scalars plus buffers.
    public var totalScalarCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }

    /// A store with the same IDs, names and roles whose trainable tensors are
    /// zero (buffers become empty tensors): the gradient or optimizer-state layout.
    public func zerosLikeTrainable() -> ParameterStore {
        var result = self
        for i in tensors.indices {
            result.tensors[i] = roles[i] == .trainable ? .zeros(tensors[i].shape) : .zeros([0])
        }
        return result
    }

    /// Sets every trainable tensor to zero, keeping shapes (reuses storage
    /// when unique; a released tensor is allocated again).
    public mutating func zeroTrainable() {
        for i in tensors.indices where roles[i] == .trainable {
            if let zeros = zerosIfReleased(i, tensors[i]) {
                tensors[i] = zeros
            } else {
                tensors[i].withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            }
        }
    }

    /// `zerosLikeTrainable()`'s layout with every tensor released
    /// (`releaseTrainable`): a gradient store that allocates nothing until
    /// a backward takes a gradient.
    public func releasedLikeTrainable() -> ParameterStore {
        var result = self
        for i in tensors.indices where roles[i] != .trainable {
            result.tensors[i] = Self.placeholder
        }
        result.releaseTrainable()
        return result
    }

    /// Frees every trainable tensor, remembering its shape: `take` then hands
    /// out zeros of that shape. A gradient store does this when an observer
    /// consumes each gradient as the backward produces it, so the store
    /// holds only the gradients in flight instead of one per parameter.
    public mutating func releaseTrainable() {
        if releasedShapes == nil {
            releasedShapes = tensors.map(\.shape)
        }
        for i in tensors.indices where roles[i] == .trainable {
            tensors[i] = Self.placeholder
        }
    }

    /// The tensors by name, e.g. for writing a weights file.
    public var namedTensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: zip(names, tensors))
    }
}

/// Registers parameters under hierarchical names while layers are built, and
/// draws their initial values from one seeded generator.
public struct ParameterBuilder {
    public private(set) var store = ParameterStore()
    public var generator: SplitMix64
    /// False: convolution weights start at zero instead of Kaiming-normal
    /// draws, for networks whose weights are loaded right after (saves ~1 s
    /// per 10 M parameters).
    public let randomInitialization: Bool
    private var scope: [String] = []
    private var learningRateMultiplier: Float = 1

    public init(seed: UInt64, randomInitialization: Bool = true) {
        generator = SplitMix64(seed: seed)
        self.randomInitialization = randomInitialization
    }

    /// Kaiming-normal (fan-out) convolution weights, or zeros without random initialization.
    public mutating func kaimingNormal(_ shape: Shape, fanIn: Bool = false) -> Tensor {
        randomInitialization ? .kaimingNormal(shape, fanIn: fanIn, using: &generator) : .zeros(shape)
    }

    /// Runs `body` with `name` appended to the current name prefix.
    public mutating func scoped<T>(_ name: String, _ body: (inout ParameterBuilder) -> T) -> T {
        scope.append(name)
        defer { scope.removeLast() }
        return body(&self)
    }

    /// Runs `body` with parameters registered at `multiplier` × the base learning rate.
    public mutating func withLearningRateMultiplier<T>(_ multiplier: Float, _ body: (inout ParameterBuilder) -> T) -> T {
        let saved = learningRateMultiplier
        learningRateMultiplier = multiplier
        defer { learningRateMultiplier = saved }
        return body(&self)
    }

    public mutating func add(_ name: String, _ tensor: Tensor, role: ParameterRole = .trainable) -> ParameterID {
        store.append(name: (scope + [name]).joined(separator: "."), tensor: tensor, role: role,
                     learningRateMultiplier: learningRateMultiplier)
    }
}
