import Foundation
import Synchronization

/// Where tensor storage comes from: small buffers from malloc, large ones
/// mapped from the kernel, and the pages of large buffers freed recently
/// kept for reuse up to a bound.
///
/// Why not malloc for everything: a training step frees and allocates
/// hundreds of megabytes of activations and gradients, and glibc keeps the
/// freed blocks in its arenas, resident, where a later request of another
/// size cannot always use them: measured on a training step, peak RSS
/// exceeded the live tensors by 270–510 MiB, and by a different amount
/// from run to run (worker threads get arenas of their own). Mapping every
/// large buffer instead gives RSS ≈ live, but every step then pays to
/// fault in and zero fresh pages (about 14 % of a training step).
///
/// So freed large buffers stay mapped in a cache of free ranges, and a
/// request takes the smallest free range it fits in (a range freed for the
/// same size, when there is one), leaving the rest of the range free:
/// a prediction's head, whose tensors have other sizes than the backbone's,
/// then reuses the backbone's pages instead of faulting in fresh ones.
/// Neighbouring free ranges merge. The cache holds at most the room below
/// the peak of buffers in use (or `cacheLimit`, when more; the ranges freed
/// longest ago are unmapped first), so RSS stays near the peak of live
/// tensors: at a training step's peak the cache is nearly empty, and after
/// it the cache takes the freed activations for the next step.
///
/// A freshly mapped buffer is zeroed by the kernel: `allocate` says so, and
/// `Tensor.zeros` skips its own pass over it.
enum TensorAllocator {
    /// Buffers of at least this many bytes are mapped and cached.
    static let largeSize = 256 << 10

    /// The bytes of freed large buffers kept for reuse even at the peak of
    /// buffers in use, from `SEGMENTATION_TENSOR_CACHE_MIB` (default 0: a
    /// training step was no faster with 64 MiB, and 24–55 MiB larger).
    static let cacheLimit: Int = {
        if let text = ProcessInfo.processInfo.environment["SEGMENTATION_TENSOR_CACHE_MIB"], let mib = Int(text), mib >= 0 {
            return mib << 20
        }
        return 0
    }()

    struct Cache: ~Copyable {
        /// Free ranges by start address: their size and when freed.
        var free: [Int: (size: Int, sequence: Int)] = [:]
        /// The start of the free range ending at each address.
        var starts: [Int: Int] = [:]
        /// Bytes of the free ranges held.
        var bytes = 0
        var sequence = 0
        /// Bytes of large buffers in use, now and at their peak.
        var live = 0
        var peak = 0

        mutating func insert(_ address: Int, size: Int, sequence: Int) {
            free[address] = (size, sequence)
            starts[address + size] = address
        }

        mutating func remove(_ address: Int) -> (size: Int, sequence: Int) {
            let range = free.removeValue(forKey: address)!
            starts[address + range.size] = nil
            return range
        }

        /// Adds a freed range, merged with the free ranges either side.
        mutating func release(_ address: Int, size: Int) {
            sequence += 1
            var (start, end) = (address, address + size)
            if free[end] != nil { end += remove(end).size }
            if let before = starts[start] { start = before; _ = remove(before) }
            insert(start, size: end - start, sequence: sequence)
            bytes += size
        }

        /// The start of `size` bytes aligned to `alignment` inside the
        /// smallest free range that holds them (the most recently freed of
        /// equal ones), taken out of the cache; the range's rest stays free.
        mutating func take(_ size: Int, alignment: Int) -> Int? {
            var best: (address: Int, aligned: Int, size: Int, sequence: Int)?
            for (address, range) in free where range.size >= size {
                let aligned = (address + alignment - 1) / alignment * alignment
                guard aligned + size <= address + range.size else { continue }
                if best == nil || range.size < best!.size || (range.size == best!.size && range.sequence > best!.sequence) {
                    best = (address, aligned, range.size, range.sequence)
                }
            }
            guard let best else { return nil }
            _ = remove(best.address)
            let aligned = best.aligned
            if aligned > best.address { insert(best.address, size: aligned - best.address, sequence: best.sequence) }
            let end = best.address + best.size
            if aligned + size < end { insert(aligned + size, size: end - aligned - size, sequence: best.sequence) }
            bytes -= size
            return aligned
        }

        /// Unmaps the ranges freed longest ago until the cache is within its
        /// bound: `cacheLimit`, or more while the buffers in use are below
        /// their peak (the cache then only refills memory the process
        /// already had in use), so that buffers in use and cached together
        /// stay below max(peak, in use + `cacheLimit`).
        mutating func evict(limit: Int) -> [(address: Int, size: Int)] {
            var evicted: [(address: Int, size: Int)] = []
            while bytes > max(limit, peak - live) {
                let oldest = free.min { $0.value.sequence < $1.value.sequence }!.key
                let size = remove(oldest).size
                bytes -= size
                evicted.append((oldest, size))
            }
            return evicted
        }
    }

    private static let cache = Mutex(Cache())
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A buffer of `byteCount` bytes aligned to `alignment` (at most a
    /// page; a huge page for buffers of one or more), and whether its
    /// contents are known to be zero.
    static func allocate(byteCount: Int, alignment: Int) -> (pointer: UnsafeMutableRawPointer, zeroed: Bool) {
        guard byteCount >= largeSize else {
            return (UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: alignment), false)
        }
        precondition(alignment <= pageSize)
        let size = mappedSize(byteCount)
        let (reused, evicted): (Int?, [(address: Int, size: Int)]) = cache.withLock { cache in
            cache.live += size
            cache.peak = max(cache.peak, cache.live)
            if let address = cache.take(size, alignment: size >= hugePageSize ? hugePageSize : pageSize) {
                return (address, [])
            }
            return (nil, cache.evict(limit: cacheLimit))
        }
        if let reused { return (UnsafeMutableRawPointer(bitPattern: reused)!, false) }
        unmap(evicted)
        return (map(size), true)
    }

    /// Returns a buffer from `allocate` with the same `byteCount`.
    static func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= largeSize else {
            pointer.deallocate()
            return
        }
        let size = mappedSize(byteCount)
        let evicted = cache.withLock { cache in
            cache.live -= size
            cache.release(Int(bitPattern: pointer), size: size)
            return cache.evict(limit: cacheLimit)
        }
        unmap(evicted)
    }

    /// Huge pages (2 MiB) for buffers at least this large: a fault then
    /// maps 2 MiB instead of 4 KiB.
    static let hugePageSize = 2 << 20

    /// Fresh zeroed pages; buffers of a huge page or more start on a huge
    /// page boundary and ask for huge pages.
    private static func map(_ size: Int) -> UnsafeMutableRawPointer {
        let huge = size >= hugePageSize
        let extra = huge ? hugePageSize : 0
        guard let mapped = mmap(nil, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            fatalError("out of memory: could not map \(size >> 20) MiB for a tensor (errno \(errno))")
        }
        guard huge else { return mapped }
        let address = Int(bitPattern: mapped)
        let aligned = (address + hugePageSize - 1) / hugePageSize * hugePageSize
        if aligned > address { munmap(mapped, aligned - address) }
        let tail = address + size + extra - (aligned + size)
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + size), tail) }
        let start = UnsafeMutableRawPointer(bitPattern: aligned)!
        madvise(start, size, MADV_HUGEPAGE)
        return start
    }

    private static func unmap(_ blocks: [(address: Int, size: Int)]) {
        for block in blocks {
            munmap(UnsafeMutableRawPointer(bitPattern: block.address), block.size)
        }
    }

    /// Bytes of freed buffers held for reuse now, and their bound now.
    static var cacheState: (bytes: Int, bound: Int) {
        cache.withLock { ($0.bytes, max(cacheLimit, $0.peak - $0.live)) }
    }

    private static func mappedSize(_ byteCount: Int) -> Int {
        (byteCount + pageSize - 1) / pageSize * pageSize
    }
}
