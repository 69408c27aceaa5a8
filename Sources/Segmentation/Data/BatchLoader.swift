import Foundation
import Synchronization

/// One training or validation batch.
public struct Batch: Sendable {
    /// [N, 3, H, W], normalized.
    public var images: Tensor
    /// N·H·W class ids, row-major [N, H, W]; 255 = ignore.
    public var labels: [UInt8]
    /// The samples' names, in batch order.
    public var names: [String]

    /// A batch of your own, e.g. for `TrainingStep.run` in a training loop of your own.
    public init(images: Tensor, labels: [UInt8], names: [String]) {
        precondition(images.shape.rank == 4 && labels.count == images.shape.batch * images.shape.height * images.shape.width,
                     "\(labels.count) labels for images \(images.shape)")
        precondition(names.count == images.shape.batch, "\(names.count) names for \(images.shape.batch) images")
        self.images = images
        self.labels = labels
        self.names = names
    }
}

/// Training batches from a dataset: shuffled each epoch (seeded), with a
/// partial last batch rolling over into the next epoch, decoded and
/// augmented on background threads ahead of the training loop.
///
/// The batch stream is a pure function of the seed: batch k holds positions
/// k·B ..< (k+1)·B of the concatenation of the epochs' permutations, and
/// every sample's augmentation draws from a generator seeded by (seed, its
/// position in that stream). So a run resumed at batch k sees exactly the
/// batches an uninterrupted run would, whatever the thread timing.
///
/// Lifetime: the background threads hold the batch recipe and the queue, never
/// the loader, so dropping the last reference to a loader stops them (its
/// `deinit` calls `stop()`). After `stop()`, `next()` throws
/// `BatchLoaderError.stopped` instead of waiting for a batch that will never come.
public final class TrainingBatchLoader: Sendable {
    public let recipe: TrainingBatchRecipe
    /// Batches prepared ahead of the consumer.
    public let prefetch: Int
    let queue: PrefetchQueue<Batch>

    public var dataset: ChannelDataset { recipe.dataset }
    public var batchSize: Int { recipe.batchSize }
    /// The positions of each batch this loader builds: all of them, or one
    /// data-parallel worker's contiguous share (SPEC §10).
    public var slots: Range<Int> { recipe.slots }

    /// - Parameter startBatch: the first batch to deliver (for resuming).
    /// - Parameter slots: the positions of each batch to build (default: all
    ///   `batchSize`); a data-parallel worker builds only its share.
    public init(
        dataset: ChannelDataset, batchSize: Int, classCount: Int, transform: TrainingTransform, seed: UInt64,
        startBatch: Int = 0, slots: Range<Int>? = nil, prefetch: Int = 2, workerCount: Int = 1,
        maximumPixels: Int = ImageCodec.defaultMaximumPixels
    ) {
        let slots = slots ?? 0..<batchSize
        precondition(batchSize > 0 && dataset.count > 0 && prefetch > 0 && workerCount > 0)
        precondition(!slots.isEmpty && slots.lowerBound >= 0 && slots.upperBound <= batchSize, "slots \(slots) of a batch of \(batchSize)")
        recipe = TrainingBatchRecipe(dataset: dataset, batchSize: batchSize, slots: slots, classCount: classCount,
                                     transform: transform, seed: seed, maximumPixels: maximumPixels)
        self.prefetch = prefetch
        queue = PrefetchQueue(start: startBatch, depth: prefetch)
        for index in 0..<workerCount {
            let (queue, recipe) = (self.queue, self.recipe)
            let thread = Thread { queue.produce { try recipe.makeBatch($0) } }
            thread.name = "segmentation-loader-\(index)"
            thread.start()
        }
    }

    deinit { stop() }

    /// Stops the background workers; pending batches are dropped, and `next()`
    /// throws from now on.
    public func stop() { queue.stop() }

    /// The next batch in stream order; blocks until it is ready. Rethrows a
    /// decoding or label error from the sample that caused it; throws
    /// `BatchLoaderError.stopped` after `stop()`.
    public func next() throws -> Batch { try queue.next() }

    /// The dataset index at position `position` of the shuffled stream.
    public func sampleIndex(atStreamPosition position: Int) -> Int { recipe.sampleIndex(atStreamPosition: position) }

    /// The order of epoch `epoch`.
    func permutation(epoch: Int) -> [Int] { recipe.permutation(epoch: epoch) }

    /// Builds batch `k` (pure function of the seed and k).
    public func makeBatch(_ k: Int) throws -> Batch { try recipe.makeBatch(k) }
}

/// `next()` was called on a stopped loader.
public enum BatchLoaderError: Error, CustomStringConvertible, Equatable {
    case stopped

    public var description: String { "the batch loader was stopped; no further batches will come" }
}

/// What batch k of a training stream holds: which samples, and how each is
/// augmented. Immutable but for a cache of the current epoch's order.
public final class TrainingBatchRecipe: Sendable {
    public let dataset: ChannelDataset
    public let batchSize: Int
    /// The positions of each batch built (all, or one worker's share).
    public let slots: Range<Int>
    public let classCount: Int
    public let transform: TrainingTransform
    public let seed: UInt64
    public let maximumPixels: Int
    private let cachedPermutation = Mutex<(epoch: Int, order: [Int])?>(nil)

    init(dataset: ChannelDataset, batchSize: Int, slots: Range<Int>, classCount: Int, transform: TrainingTransform,
         seed: UInt64, maximumPixels: Int) {
        self.dataset = dataset
        self.batchSize = batchSize
        self.slots = slots
        self.classCount = classCount
        self.transform = transform
        self.seed = seed
        self.maximumPixels = maximumPixels
    }

    /// The dataset index at position `position` of the shuffled stream.
    public func sampleIndex(atStreamPosition position: Int) -> Int {
        let n = dataset.count
        let epoch = position / n
        return permutation(epoch: epoch)[position % n]
    }

    /// The order of epoch `epoch`: a Fisher–Yates shuffle seeded by (seed, epoch).
    func permutation(epoch: Int) -> [Int] {
        cachedPermutation.withLock { cached in
            if let cached, cached.epoch == epoch { return cached.order }
            var generator = SplitMix64(seed: SplitMix64.mix(seed ^ 0x5348_5546_464C_4531 &+ UInt64(epoch)))
            let order = Array(0..<dataset.count).shuffled(using: &generator)
            cached = (epoch, order)
            return order
        }
    }

    /// Builds batch `k`'s `slots` (pure function of the seed and k).
    public func makeBatch(_ k: Int) throws -> Batch {
        let crop = transform.cropSize
        var labels: [UInt8] = []
        labels.reserveCapacity(slots.count * crop * crop)
        var names: [String] = []
        var images = Tensor(shape: [slots.count, 3, crop, crop])
        for slot in slots {
            let position = k * batchSize + slot
            let index = sampleIndex(atStreamPosition: position)
            let sample = try dataset.loadSample(index, classCount: classCount, maximumPixels: maximumPixels)
            var generator = SplitMix64(seed: SplitMix64.mix(seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(position + 1)))
            let (image, sampleLabels) = transform(image: sample.image, labels: sample.labels, using: &generator)
            images.withMutablePointer { destination in
                image.withPointer { source in
                    (destination + (slot - slots.lowerBound) * 3 * crop * crop).update(from: source, count: 3 * crop * crop)
                }
            }
            labels += sampleLabels
            names.append(dataset.samples[index].name)
        }
        return Batch(images: images, labels: labels, names: names)
    }
}

/// Items k = start, start+1, … made by producer threads at most `depth`
/// ahead of the consumer and handed out in order.
final class PrefetchQueue<Item: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is touched only with `condition` locked.
    private let condition = NSCondition()
    private let depth: Int
    private var ready: [Int: Result<Item, any Error>] = [:]
    private var nextToProduce: Int
    private var nextToConsume: Int
    private var stopped = false
    private var running = 0

    init(start: Int, depth: Int) {
        self.depth = depth
        nextToProduce = start
        nextToConsume = start
    }

    /// Producer threads still inside `produce`.
    var runningProducers: Int {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    func stop() {
        condition.lock()
        stopped = true
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    func next() throws -> Item {
        condition.lock()
        defer { condition.unlock() }
        let wanted = nextToConsume
        while ready[wanted] == nil && !stopped { condition.wait() }
        if stopped { throw BatchLoaderError.stopped }
        let result = ready.removeValue(forKey: wanted)!
        nextToConsume += 1
        condition.broadcast()
        return try result.get()
    }

    /// A producer thread's body: makes items until `stop()`.
    func produce(_ make: (Int) throws -> Item) {
        condition.lock()
        running += 1
        condition.unlock()
        while true {
            condition.lock()
            while !stopped && nextToProduce - nextToConsume >= depth { condition.wait() }
            if stopped {
                running -= 1
                condition.unlock()
                return
            }
            let k = nextToProduce
            nextToProduce += 1
            condition.unlock()
            let result = Result { try make(k) }
            condition.lock()
            if !stopped { ready[k] = result }
            condition.broadcast()
            condition.unlock()
        }
    }
}

/// Validation batches in dataset order: whole images one at a time when
/// `transform.cropSize` is nil (validation_mini_batch_size = 1), else center
/// crops `batchSize` at a time (the last batch may be smaller).
public struct ValidationBatches: Sequence, Sendable {
    public let dataset: ChannelDataset
    public let batchSize: Int
    public let classCount: Int
    public let transform: ValidationTransform
    public let maximumPixels: Int
    /// The dataset indices to visit (all, or one data-parallel worker's share).
    public let indices: Range<Int>

    public init(dataset: ChannelDataset, batchSize: Int, classCount: Int, transform: ValidationTransform,
                maximumPixels: Int = ImageCodec.defaultMaximumPixels, indices: Range<Int>? = nil) {
        self.dataset = dataset
        self.indices = indices ?? 0..<dataset.count
        self.batchSize = transform.cropSize == nil ? 1 : batchSize
        self.classCount = classCount
        self.transform = transform
        self.maximumPixels = maximumPixels
    }

    public struct Iterator: IteratorProtocol {
        let batches: ValidationBatches
        var start: Int

        public mutating func next() -> Result<Batch, Error>? {
            guard start < batches.indices.upperBound else { return nil }
            let end = Swift.min(start + batches.batchSize, batches.indices.upperBound)
            defer { start = end }
            return Result { try batches.batch(start..<end) }
        }
    }

    public func makeIterator() -> Iterator { Iterator(batches: self, start: indices.lowerBound) }

    func batch(_ range: Range<Int>) throws -> Batch {
        var parts: [(Tensor, [UInt8])] = []
        for index in range {
            let sample = try dataset.loadSample(index, classCount: classCount, maximumPixels: maximumPixels)
            parts.append(transform(image: sample.image, labels: sample.labels))
        }
        let shape = parts[0].0.shape  // [3, H, W]
        let plane = shape.elementCount
        let images = Tensor(shape: [parts.count, shape[0], shape[1], shape[2]]) { destination in
            for (slot, part) in parts.enumerated() {
                part.0.withPointer { (destination.baseAddress! + slot * plane).update(from: $0, count: plane) }
            }
        }
        return Batch(images: images, labels: parts.flatMap(\.1), names: range.map { dataset.samples[$0].name })
    }
}
