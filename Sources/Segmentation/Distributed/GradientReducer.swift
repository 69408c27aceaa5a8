import Foundation

/// Sums the trainable gradients over the workers in buckets, overlapping
/// the communication with the backward (SPEC §10).
///
/// The trainable tensors are grouped, in reverse registration order (the
/// order a backward finishes them: heads first, stem last), into buckets of
/// about `bucketBytes`. As a layer's backward puts a gradient back, it is
/// copied into its bucket's flat buffer (`GradientObserver`); when a bucket
/// is complete, a communication thread all-reduces it while the backward
/// goes on. `finish` waits for the last bucket and copies the sums back.
///
/// Buckets are reduced strictly in bucket order, so every rank issues the
/// same collectives in the same order whatever the timing. The thread uses
/// its own duplicate of the communicator: the main thread may reduce BN
/// statistics (syncbn) at the same time.
///
/// The sums are in Double, of each rank's gradient plus the part its
/// rounding dropped (`lowParts`, which the layers fill), and are rounded to
/// float once: N workers get the gradients one worker gets on the whole
/// batch, bit for bit (ExactSum.swift).
public final class GradientReducer: GradientObserver, @unchecked Sendable {
    // @unchecked Sendable: the mutable state (ready, reduced, stopped,
    // pending, buffer contents) is only touched with `condition` locked, or by
    // the one thread that owns it at that point of the step protocol: the
    // backward thread fills a bucket until it is marked ready, then the
    // communication thread owns it until it is marked reduced.
    private let communicator: any Communicator
    private let buckets: [[ParameterID]]
    /// Per parameter index: (bucket, offset in the bucket's buffer), nil for buffers.
    private let placement: [(bucket: Int, offset: Int)?]
    private let buffers: [UnsafeMutableBufferPointer<Double>]
    /// Where this rank's layers add what rounding their gradients dropped.
    public let lowParts: GradientLowParts
    private let sizes: [Int]

    private let condition = NSCondition()
    private var pending: [Int]
    private var filled: [Bool]
    private var ready: [Bool]
    private var reduced = 0
    private var started = false
    private var stopped = false
    private var thread: Thread?

    /// Seconds `finish` spent waiting for the communication in the last step.
    public private(set) var lastWaitSeconds = 0.0

    /// - Parameter communicator: the training communicator; the reducer duplicates it.
    public init(parameters: ParameterStore, communicator: any Communicator,
                bucketBytes: Int = 25 << 20, firstBucketBytes: Int = 1 << 20) {
        self.communicator = communicator.duplicate()
        var buckets: [[ParameterID]] = []
        var placement = [(bucket: Int, offset: Int)?](repeating: nil, count: parameters.count)
        var sizes: [Int] = []
        var current: [ParameterID] = []
        var size = 0
        for id in parameters.ids.reversed() where parameters.role(of: id) == .trainable {
            placement[id.index] = (buckets.count, size)
            current.append(id)
            size += parameters[id].elementCount
            if size * MemoryLayout<Double>.size >= (buckets.isEmpty ? firstBucketBytes : bucketBytes) {
                buckets.append(current)
                sizes.append(size)
                (current, size) = ([], 0)
            }
        }
        if !current.isEmpty {
            buckets.append(current)
            sizes.append(size)
        }
        self.buckets = buckets
        self.placement = placement
        self.sizes = sizes
        lowParts = GradientLowParts(parameters: parameters)
        buffers = sizes.map { size in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: size)
            buffer.initialize(repeating: 0)
            return buffer
        }
        pending = buckets.map(\.count)
        filled = Array(repeating: false, count: parameters.count)
        ready = Array(repeating: false, count: buckets.count)
        reduced = buckets.count
        let thread = Thread { [unowned self] in self.communicate() }
        thread.name = "segmentation-allreduce"
        self.thread = thread
        thread.start()
    }

    deinit {
        buffers.forEach { $0.deallocate() }
    }

    /// The number of buckets (for logs and tests).
    public var bucketCount: Int { buckets.count }

    /// Ends the communication thread; call once training is over (the
    /// thread holds no reference that would keep the reducer alive, but it
    /// must not outlive it).
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while thread != nil { condition.wait() }
        condition.unlock()
    }

    /// Call before the backward of each step.
    public func begin() {
        condition.lock()
        precondition(reduced == buckets.count, "GradientReducer.begin before the previous step finished")
        pending = buckets.map(\.count)
        for i in filled.indices { filled[i] = false }
        for i in ready.indices { ready[i] = false }
        reduced = 0
        started = true
        condition.broadcast()
        condition.unlock()
    }

    public func gradientIsFinal(_ id: ParameterID, _ gradient: Tensor) -> GradientDisposition {
        guard let (bucket, offset) = placement[id.index] else { return .keep }
        condition.lock()
        let duplicate = filled[id.index]
        filled[id.index] = true
        condition.unlock()
        precondition(!duplicate, "the gradient of parameter \(id.index) was put twice in one backward")
        let target = buffers[bucket].baseAddress! + offset
        gradient.withUnsafeBufferPointer { source in
            lowParts.consume(id) { low in
                for i in source.indices { target[i] = Double(source[i]) + Double(low[i]) }
            }
        }
        condition.lock()
        pending[bucket] -= 1
        if pending[bucket] == 0 {
            ready[bucket] = true
            condition.broadcast()
        }
        condition.unlock()
        return .keep
    }

    /// Sends the gradients no backward put (there are none in the networks
    /// of this library, but a frozen layer would leave some), waits for every
    /// bucket, and writes the sums over the workers into `gradients`.
    public func finish(_ gradients: inout ParameterStore) {
        for id in buckets.joined() {
            condition.lock()
            let done = filled[id.index]
            condition.unlock()
            if !done { _ = gradientIsFinal(id, gradients[id]) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        condition.lock()
        while reduced < buckets.count { condition.wait() }
        started = false
        condition.unlock()
        let waited = clock.now - start
        lastWaitSeconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) * 1e-18
        for (index, bucket) in buckets.enumerated() {
            for id in bucket {
                let offset = placement[id.index]!.offset
                let source = buffers[index].baseAddress! + offset
                gradients.tensors[id.index].withUnsafeMutableBufferPointer { destination in
                    for i in destination.indices { destination[i] = Float(source[i]) }
                }
            }
        }
    }

    /// The communication thread: reduces bucket after bucket as they become ready.
    private func communicate() {
        while true {
            condition.lock()
            while !stopped && !(started && reduced < buckets.count && ready[reduced]) { condition.wait() }
            if stopped {
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let bucket = reduced
            condition.unlock()
            communicator.allReduceSum(buffers[bucket])
            condition.lock()
            reduced += 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
