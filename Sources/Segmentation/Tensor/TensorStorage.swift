import Synchronization

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
    convenience init(uninitializedCount count: Int) {
        self.init(count: count, allocation: Self.allocate(count).pointer)
    }

    /// A buffer of `value`s; a buffer the allocator hands out zeroed is not
    /// written again for zeros.
    convenience init(repeating value: Float, count: Int) {
        let allocation = Self.allocate(count)
        self.init(count: count, allocation: allocation.pointer)
        if value != 0 || !allocation.zeroed {
            pointer.initialize(repeating: value, count: count)
        }
    }

    private static func allocate(_ count: Int) -> (pointer: UnsafeMutableRawPointer, zeroed: Bool) {
        precondition(count >= 0)
        return TensorAllocator.allocate(byteCount: byteCount(count), alignment: alignment)
    }

    /// At least one scalar, so an empty tensor still has a valid pointer.
    private static func byteCount(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    private init(count: Int, allocation: UnsafeMutableRawPointer) {
        self.count = count
        pointer = allocation.bindMemory(to: Float.self, capacity: max(count, 1))
        TensorMemory.allocated(count * MemoryLayout<Float>.stride)
    }

    func copy() -> TensorStorage {
        let result = TensorStorage(uninitializedCount: count)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    deinit {
        TensorAllocator.deallocate(UnsafeMutableRawPointer(pointer), byteCount: Self.byteCount(count))
        TensorMemory.freed(count * MemoryLayout<Float>.stride)
    }
}

/// The bytes held by tensor storage (tensors and workspaces) in this
/// process, now and at their peak: what a network keeps alive, apart from
/// the allocator's free lists, the code and the BLAS buffers that peak RSS
/// adds. `segment bench model` reports the peak beside the peak RSS.
public enum TensorMemory {
    private static let live = Atomic<Int>(0)
    private static let peak = Atomic<Int>(0)

    /// Bytes of tensor storage alive now.
    public static var liveBytes: Int { live.load(ordering: .relaxed) }

    /// The largest `liveBytes` since the process started or since `resetPeak`.
    public static var peakBytes: Int { peak.load(ordering: .relaxed) }

    /// Starts a new peak from what is alive now.
    public static func resetPeak() {
        peak.store(live.load(ordering: .relaxed), ordering: .relaxed)
    }

    static func allocated(_ bytes: Int) {
        let now = live.wrappingAdd(bytes, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
    }

    static func freed(_ bytes: Int) {
        live.wrappingSubtract(bytes, ordering: .relaxed)
    }
}
