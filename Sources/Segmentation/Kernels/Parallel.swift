import Dispatch
import Foundation
import Synchronization

/// The library's one threading model (see Docs/threading.md):
///
/// - OpenBLAS runs single-threaded (`BLAS` sets this before its first call).
///   Its own worker threads would otherwise spin for a while after every
///   `sgemm`, stealing the core from the elementwise pass that follows.
/// - All parallelism is ours: `parallelFor` splits a loop into at most
///   `Parallelism.workerCount` chunks on Dispatch's pool. Convolutions run one
///   image per worker, or split one GEMM over the workers (`BLAS.parallelSgemm`).
/// - Parallel regions never nest: inside a worker, `parallelFor` runs serially.
public enum Parallelism {
    /// Worker count: `SEGMENTATION_THREADS` when set to a positive integer,
    /// else the number of active cores.
    public static let workerCount: Int = {
        if let text = ProcessInfo.processInfo.environment["SEGMENTATION_THREADS"],
            let value = Int(text), value > 0
        {
            return value
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// True on a thread that is running a chunk of a parallel region.
    static var isInsideParallelRegion: Bool {
        pthread_getspecific(regionKey) != nil
    }

    private static let regionKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    fileprivate static func markRegion(_ inside: Bool) {
        pthread_setspecific(regionKey, inside ? UnsafeRawPointer(bitPattern: 1) : nil)
    }
}

/// Wraps a non-Sendable closure so Dispatch can call it from its workers.
/// Safe because `parallelFor` blocks until every chunk has returned, and each
/// chunk receives a disjoint range: the closure's captures are never used
/// after the call, nor written by two chunks at the same index.
private struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per worker.
///
/// - Parameter minimumChunk: the smallest range worth a thread hand-off; loops
///   shorter than two of these run serially on the caller's thread (a split
///   costs ~20 µs, more than memory-bound work under ~1 MB gains).
/// - Parameter chunks: upper bound on the number of chunks (default: workers).
@inline(__always)
func parallelFor(
    _ count: Int, minimumChunk: Int = 1, chunks: Int = Parallelism.workerCount,
    _ body: (Range<Int>) -> Void
) {
    parallelChunks(count, minimumChunk: minimumChunk, chunks: chunks) { _, range in body(range) }
}

/// `parallelFor` that also passes each chunk's index (0 ..< number of chunks,
/// at most the worker count), so a chunk can own a per-worker scratch slot.
func parallelChunks(
    _ count: Int, minimumChunk: Int = 1, chunks: Int = Parallelism.workerCount,
    _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
) {
    let parts = min(chunks, Parallelism.workerCount, count / max(minimumChunk, 1))
    if parts <= 1 || Parallelism.isInsideParallelRegion {
        if count > 0 { body(0, 0..<count) }
        return
    }
    onWorkers(parts) { part in body(part, (count * part / parts)..<(count * (part + 1) / parts)) }
}

/// `parallelFor` for loops whose items are independent and uneven in cost
/// or whose workers are: `count` is cut into ranges of `grain` items (the
/// last shorter), handed out in order to whichever worker asks next, so a
/// worker that finishes early takes more instead of waiting at the end.
/// Which worker runs a range, and how many ranges one worker runs, varies
/// from call to call; the body must compute each item the same way in any
/// range (a map, not a reduction over its range), so the results' bits do
/// not depend on it.
@inline(__always)
func parallelForBalanced(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    parallelChunksBalanced(count, grain: grain) { _, range in body(range) }
}

/// `parallelForBalanced` that also passes the worker running each range
/// (0 ..< at most the worker count), so a range can use that worker's
/// scratch slot.
func parallelChunksBalanced(_ count: Int, grain: Int, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
    let grain = max(1, grain)
    let pieces = (count + grain - 1) / grain
    let workers = min(Parallelism.workerCount, pieces)
    if workers <= 1 || Parallelism.isInsideParallelRegion {
        if count > 0 { body(0, 0..<count) }
        return
    }
    let next = PieceCounter()
    onWorkers(workers) { worker in
        while case let piece = next.take(), piece < pieces {
            body(worker, (piece * grain)..<min(count, (piece + 1) * grain))
        }
    }
}

/// Runs `body(worker)` for each of `workers` workers on Dispatch's pool,
/// marked as inside a parallel region, and returns when all have.
private func onWorkers(_ workers: Int, _ body: (_ worker: Int) -> Void) {
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendableBox(value: escapable)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            Parallelism.markRegion(true)
            box.value(worker)
            Parallelism.markRegion(false)
        }
    }
}

/// The next piece of a `parallelChunksBalanced` loop.
private final class PieceCounter: Sendable {
    private let value = Atomic<Int>(0)

    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// A raw pointer that may cross into `parallelFor` chunks. Kernels use it to
/// hand a buffer to workers that write disjoint parts of it.
struct SendablePointer<Pointee>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Pointee>
    init(_ base: UnsafeMutablePointer<Pointee>) { self.base = base }
}
