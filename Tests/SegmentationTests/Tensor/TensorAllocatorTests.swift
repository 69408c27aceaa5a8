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

    @Test func tensorMemoryCountsLiveStorage() {
        let tensor = Tensor.zeros([1 << 20])
        #expect(TensorMemory.liveBytes >= 4 << 20 && TensorMemory.peakBytes >= 4 << 20)
        _ = tensor
    }
}
