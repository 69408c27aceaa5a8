import Foundation

/// The collective operations data-parallel training needs (SPEC §10): every
/// rank (worker) of a job calls the same operations in the same order, and
/// each call returns once every rank has made it.
///
/// Two implementations: `ThreadCommunicator` (ranks are threads of one
/// process, for tests) here, and an Open MPI one in the `SegmentationMPI`
/// target, which the `segment` CLI links (this library never links MPI).
/// A job of one worker uses `SingleProcessCommunicator`, where every
/// operation is the identity.
///
/// Collectives of one communicator must not be called from two threads at
/// once; a thread that communicates concurrently with another (the gradient
/// reduction thread) uses its own `duplicate()`.
public protocol Communicator: AnyObject, Sendable {
    /// This worker's index, 0 ..< size.
    var rank: Int { get }
    /// The number of workers.
    var size: Int { get }
    /// Replaces `buffer` on every rank with the elementwise sum over the
    /// ranks' buffers (equal counts on every rank). Every rank receives the
    /// same bits.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Copies `root`'s bytes into `buffer` on every other rank (equal sizes).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// A communicator over the same ranks whose collectives never match this
    /// one's, so two threads can each drive one. Every rank calls it, in the
    /// same order.
    func duplicate() -> any Communicator
    /// Ends the job on every rank after an unrecoverable failure of this one
    /// (MPI_Abort). Only the CLI calls it, after reporting the reason.
    func abort(exitCode: Int32) -> Never
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Sums an array over the ranks.
    public func allReduceSum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    public func allReduceSum(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Sums a tensor over the ranks, in place.
    public func allReduceSum(_ tensor: inout Tensor) {
        tensor.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Root's tensor on every rank (equal shapes).
    public func broadcast(_ tensor: inout Tensor, root: Int = 0) {
        tensor.withUnsafeMutableBufferPointer { broadcast(UnsafeMutableRawBufferPointer($0), root: root) }
    }

    /// Root's bytes on every rank, whatever their length elsewhere.
    public func broadcast(_ bytes: inout [UInt8], root: Int = 0) {
        var length = [Double(bytes.count)]
        length.withUnsafeMutableBytes { broadcast($0, root: root) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
        bytes.withUnsafeMutableBytes { broadcast($0, root: root) }
    }

    /// The ranks whose `value` differs from rank 0's (empty when all agree);
    /// the same answer on every rank.
    public func ranksDiffering(from value: UInt64) -> [Int] {
        var root = [value]
        root.withUnsafeMutableBytes { broadcast($0, root: 0) }
        var differs = [Double](repeating: 0, count: size)
        differs[rank] = root[0] == value ? 0 : 1
        allReduceSum(&differs)
        return differs.indices.filter { differs[$0] != 0 }
    }
}

/// The communicator of a job with one worker: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
    public func barrier() {}
    public func duplicate() -> any Communicator { self }
    public func abort(exitCode: Int32) -> Never { exit(exitCode) }
}

/// Ranks as threads of one process (tests, and the equivalence contract of
/// SPEC §10 without launching processes). `ThreadCommunicator.group(size:)`
/// makes one communicator per rank; give each to its own thread.
///
/// Each collective is a rendezvous: the last rank to arrive sums the buffers
/// in rank order (so every rank gets the same bits) and writes the result
/// into all of them while the others wait.
public final class ThreadCommunicator: Communicator, @unchecked Sendable {
    // @unchecked Sendable: `rank` and `group` are immutable; `duplicates` is
    // only touched by this rank's own thread (the protocol's one-thread rule).
    public let rank: Int
    private let group: Group
    private var duplicates = 0

    public var size: Int { group.size }

    /// One communicator per rank, 0 ..< size.
    public static func group(size: Int) -> [ThreadCommunicator] {
        precondition(size > 0)
        let group = Group(size: size)
        return (0..<size).map { ThreadCommunicator(rank: $0, group: group) }
    }

    private init(rank: Int, group: Group) {
        self.rank = rank
        self.group = group
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        group.rendezvous(rank: rank, buffer: UnsafeMutableRawBufferPointer(buffer)) { buffers in
            Self.sum(buffers.map { $0.bindMemory(to: Float.self) })
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        group.rendezvous(rank: rank, buffer: UnsafeMutableRawBufferPointer(buffer)) { buffers in
            Self.sum(buffers.map { $0.bindMemory(to: Double.self) })
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        group.rendezvous(rank: rank, buffer: buffer) { buffers in
            for (index, destination) in buffers.enumerated() where index != root {
                precondition(destination.count == buffers[root].count, "broadcast of unequal sizes")
                if destination.count > 0 { destination.copyMemory(from: UnsafeRawBufferPointer(buffers[root])) }
            }
        }
    }

    public func barrier() {
        group.rendezvous(rank: rank, buffer: UnsafeMutableRawBufferPointer(start: nil, count: 0)) { _ in }
    }

    public func duplicate() -> any Communicator {
        duplicates += 1
        return ThreadCommunicator(rank: rank, group: group.child(duplicates))
    }

    public func abort(exitCode: Int32) -> Never {
        fatalError("rank \(rank) of a thread group aborted with exit code \(exitCode)")
    }

    private static func sum<T: FloatingPoint>(_ buffers: [UnsafeMutableBufferPointer<T>]) {
        let count = buffers[0].count
        precondition(buffers.allSatisfy { $0.count == count }, "all-reduce of unequal counts \(buffers.map(\.count))")
        let result = UnsafeMutableBufferPointer<T>.allocate(capacity: count)
        defer { result.deallocate() }
        _ = result.initialize(from: buffers[0])
        for other in buffers.dropFirst() {
            for i in 0..<count { result[i] += other[i] }
        }
        for buffer in buffers { _ = buffer.update(fromContentsOf: result) }
    }

    /// The shared state of one group of ranks.
    private final class Group: @unchecked Sendable {
        // @unchecked Sendable: every mutable field is touched with `condition` locked.
        let size: Int
        private let condition = NSCondition()
        private var buffers: [UnsafeMutableRawBufferPointer?]
        private var arrived = 0
        private var generation = 0
        private var children: [Int: Group] = [:]

        init(size: Int) {
            self.size = size
            buffers = Array(repeating: nil, count: size)
        }

        /// The group of every rank's `index`-th duplicate.
        func child(_ index: Int) -> Group {
            condition.lock()
            defer { condition.unlock() }
            if let existing = children[index] { return existing }
            let created = Group(size: size)
            children[index] = created
            return created
        }

        /// Waits for every rank; the last to arrive runs `combine` on all the
        /// buffers (in rank order) while the others are blocked here.
        func rendezvous(rank: Int, buffer: UnsafeMutableRawBufferPointer,
                        combine: ([UnsafeMutableRawBufferPointer]) -> Void) {
            condition.lock()
            defer { condition.unlock() }
            precondition(buffers[rank] == nil, "rank \(rank) entered a collective twice")
            buffers[rank] = buffer
            arrived += 1
            let myGeneration = generation
            if arrived == size {
                combine(buffers.map { $0! })
                buffers = Array(repeating: nil, count: size)
                arrived = 0
                generation += 1
                condition.broadcast()
            } else {
                while generation == myGeneration { condition.wait() }
            }
        }
    }
}
