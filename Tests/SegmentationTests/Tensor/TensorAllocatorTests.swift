@testable import Segmentation
import Testing

/// Large tensor buffers come from mapped pages and a cache of freed buffers
/// (Tensor/TensorAllocator.swift). Other tests allocate concurrently, so
/// these check what holds whatever else runs: contents, alignment, and the
/// cache's bound.
@Suite("Tensor allocator")
struct TensorAllocatorTests {
    /// A buffer handed out again after a tensor wrote to it still comes out
    /// as zeros from `Tensor.zeros`, and a new uninitialized tensor of that
    /// size is fully writable.
    @Test(arguments: [TensorAllocator.largeSize / 4, (3 << 20) / 4 + 5, 1000])
    func zerosAreZeroAfterReuse(_ count: Int) {
        for round in 0..<3 {
            var dirty = Tensor.zeros([count])
            dirty.withUnsafeMutableBufferPointer { $0.update(repeating: Float(round + 1)) }
            #expect(dirty.scalars.allSatisfy { $0 == Float(round + 1) })
            _ = consume dirty
            let zeros = Tensor.zeros([count])
            #expect(zeros.scalars.allSatisfy { $0 == 0 }, "round \(round): a reused buffer was not cleared")
            let filled = Tensor(shape: [count], repeating: 2.5)
            #expect(filled.scalars.allSatisfy { $0 == 2.5 })
        }
    }

    /// 64-byte alignment for every buffer; buffers of a huge page or more
    /// start on a huge-page boundary.
    @Test func alignment() {
        for count in [1, 17, TensorAllocator.largeSize / 4, TensorAllocator.hugePageSize / 4, (5 << 20) / 4 + 3] {
            let tensor = Tensor.zeros([count])
            let address = tensor.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress!) }
            #expect(address % TensorStorage.alignment == 0)
            if count * 4 >= TensorAllocator.hugePageSize {
                #expect(address % TensorAllocator.hugePageSize == 0, "\(count) floats at \(address)")
            }
        }
    }

    /// Freeing many large buffers keeps at most the cache's bound: its limit,
    /// or the room below the peak of buffers in use.
    @Test func freedBuffersAreCachedWithinTheBound() {
        let sizes = (0..<40).map { (1 << 20) + $0 * 4096 }  // distinct sizes: none reused by another
        var tensors = sizes.map { Tensor.zeros([$0 / 4]) }
        tensors.removeAll()
        let (cached, bound) = TensorAllocator.cacheState
        #expect(cached <= bound, "\(cached) bytes cached over a bound of \(bound)")
    }

    /// The cache's free ranges, on made-up addresses: a request takes the
    /// smallest range it fits in (aligned as asked) and leaves the rest
    /// free; neighbouring free ranges merge; eviction unmaps the ranges
    /// freed longest ago until the bytes held are within the bound.
    @Test func freeRangesSplitMergeAndEvictOldestFirst() {
        let (page, huge) = (4096, 2 << 20)
        var cache = TensorAllocator.Cache()
        let base = 64 * huge
        cache.release(base, size: 8 * huge)                 // [0, 8) huge pages, freed first
        cache.release(base + 20 * huge, size: 3 * huge)     // [20, 23)
        #expect(cache.bytes == 11 * huge)
        // 3 huge pages fit [20, 23) exactly: the smaller range wins.
        #expect(cache.take(3 * huge, alignment: huge) == base + 20 * huge)
        // 5 pages of 4 KiB come from the front of [0, 8); the rest stays free.
        #expect(cache.take(5 * page, alignment: page) == base)
        #expect(cache.bytes == 8 * huge - 5 * page)
        // A huge-page-aligned request skips the unaligned head of what is left.
        #expect(cache.take(2 * huge, alignment: huge) == base + huge)
        #expect(cache.free.count == 2, "the head [5 pages, 1) and the tail [3, 8) stay free")
        // Nothing holds 6 huge pages now.
        #expect(cache.take(6 * huge, alignment: huge) == nil)
        // Freeing what was taken merges the whole of [0, 8) back into one range.
        cache.release(base + huge, size: 2 * huge)
        cache.release(base, size: 5 * page)
        #expect(cache.free.count == 1 && cache.free[base]?.size == 8 * huge)
        #expect(cache.take(6 * huge, alignment: huge) == base)
        // Eviction: with nothing in use and no peak, everything goes, oldest first.
        cache.release(base + 40 * huge, size: huge)
        let evicted = cache.evict(limit: 2 * huge)
        #expect(evicted.map(\.address) == [base + 6 * huge], "the range freed longest ago goes first")
        #expect(cache.bytes == huge && cache.free.keys.sorted() == [base + 40 * huge])
        #expect(cache.evict(limit: 0).map(\.size) == [huge] && cache.bytes == 0 && cache.free.isEmpty)
    }

    @Test func tensorMemoryCountsLiveStorage() {
        let tensor = Tensor.zeros([1 << 20])
        #expect(TensorMemory.liveBytes >= 4 << 20 && TensorMemory.peakBytes >= 4 << 20)
        _ = tensor
    }
}
