/// The owner of one 64-byte-aligned buffer of Float32 scalars.
///
/// `@unchecked Sendable` is safe because the pointer and count never change
/// after `init`, and `Tensor` only writes through the pointer after proving it
/// holds the sole reference (copy-on-write); a shared storage is read-only.
final class TensorStorage: @unchecked Sendable {
    /// Cache-line (and AVX-512 register) alignment.
    static let alignment = 64

    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// A buffer whose contents are undefined; the caller overwrites all of it.
    init(uninitializedCount count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: Self.alignment)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    func copy() -> TensorStorage {
        let result = TensorStorage(uninitializedCount: count)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    deinit {
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}
