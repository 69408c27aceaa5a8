import RealModule

// Small vectorisable reductions and maps shared by the kernels.
// `Relaxed.sum` / `Relaxed.multiplyAdd` let LLVM reassociate, which is what
// makes a float reduction vectorise (a strict `s += x` loop never does).

@inline(__always)
func relaxedSum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var total: Float = 0
    for i in 0..<count { total = Relaxed.sum(total, x[i]) }
    return total
}

@inline(__always)
func relaxedDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
    var total: Float = 0
    for i in 0..<count { total = Relaxed.multiplyAdd(x[i], y[i], total) }
    return total
}

/// y[i] += x[i]
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}

/// y[i] += x[i] over `count` elements, split over the workers for large arrays.
func parallelAddInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    let y = SendablePointer(y)
    let x = SendablePointer(UnsafeMutablePointer(mutating: x))
    let block = 4096
    parallelFor((count + block - 1) / block, minimumChunk: 64) { range in
        let start = range.lowerBound * block
        let end = min(count, range.upperBound * block)
        addInPlace(y.base + start, x.base + start, count: end - start)
    }
}

extension Optional where Wrapped == Tensor {
    /// The base address of the wrapped tensor's storage, or nil.
    func withPointerIfPresent<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        guard let tensor = self else { return try body(nil) }
        return try tensor.withPointer { try body($0) }
    }

    /// The mutable base address of the wrapped tensor's storage, or nil; the
    /// tensor is uniqued first, never copied out of the optional.
    mutating func withUnsafeMutablePointerIfPresent<R>(
        _ body: (UnsafeMutablePointer<Float>?) throws -> R
    ) rethrows -> R {
        if self == nil { return try body(nil) }
        return try self!.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}

extension Tensor {
    /// The base address of the storage (never nil: storage has capacity ≥ 1).
    @inline(__always)
    func withPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    @inline(__always)
    mutating func withMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }
}
