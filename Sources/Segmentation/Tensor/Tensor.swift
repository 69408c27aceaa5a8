/// A dense Float32 tensor with value semantics.
///
/// Storage is contiguous, row-major (NCHW for activations) and 64-byte
/// aligned. Copies share storage until one of them is written
/// (copy-on-write). Raw memory is reachable only inside the scoped
/// `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer` closures.
public struct Tensor: Sendable {
    public private(set) var shape: Shape
    private var storage: TensorStorage

    /// A tensor of `shape` filled with `value`.
    public init(shape: Shape, repeating value: Float = 0) {
        self.shape = shape
        self.storage = TensorStorage(repeating: value, count: shape.elementCount)
    }

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(shape: Shape, scalars: [Float]) {
        precondition(
            scalars.count == shape.elementCount,
            "\(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: scalars.count)
        scalars.withUnsafeBufferPointer { source in
            storage.pointer.update(from: source.baseAddress!, count: source.count)
        }
    }

    /// A tensor whose scalars are undefined until `initializer` writes all of
    /// them. For kernels that overwrite their whole output.
    public init(
        shape: Shape, uninitializedWith initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void
    ) rethrows {
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: shape.elementCount)
        try initializer(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    public var elementCount: Int { storage.count }

    /// The scalars in row-major order.
    public var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The same scalars seen with another shape of equal element count.
    public func reshaped(to newShape: Shape) -> Tensor {
        precondition(
            newShape.elementCount == shape.elementCount,
            "cannot reshape \(shape) to \(newShape)")
        var result = self
        result.shape = newShape
        return result
    }

    public func withUnsafeBufferPointer<R>(
        _ body: (UnsafeBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Element access by flat row-major index; for tests and small tensors,
    /// never for kernels.
    public subscript(flat index: Int) -> Float {
        get {
            precondition(index >= 0 && index < storage.count, "index \(index) out of range for \(shape)")
            return storage.pointer[index]
        }
        set {
            precondition(index >= 0 && index < storage.count, "index \(index) out of range for \(shape)")
            withUnsafeMutableBufferPointer { $0[index] = newValue }
        }
    }
}

extension Tensor: Equatable {
    /// Same shape and bitwise-equal scalars (NaN never equals).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        return lhs.withUnsafeBufferPointer { a in
            rhs.withUnsafeBufferPointer { b in
                a.elementsEqual(b)
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = withUnsafeBufferPointer { $0.prefix(8).map { "\($0)" } }
        let more = elementCount > 8 ? ", …" : ""
        return "Tensor\(shape)(\(preview.joined(separator: ", "))\(more))"
    }
}
