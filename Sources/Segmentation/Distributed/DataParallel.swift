import Foundation

/// What goes wrong between the workers of a data-parallel job.
public enum DataParallelError: Error, CustomStringConvertible, Equatable {
    /// Some ranks were started with other hyperparameters or data than rank 0.
    case configurationMismatch(ranks: [Int], workers: Int)
    /// mini_batch_size must give every worker at least one sample.
    case batchTooSmall(miniBatchSize: Int, workers: Int)
    /// The debug check (SEGMENTATION_CHECK_WEIGHTS) found ranks whose weights drifted from rank 0's.
    case weightsDiverged(ranks: [Int], epoch: Int)
    /// Rank 0 failed to read the checkpoint to resume from.
    case resumeFailed(String)
    /// Rank 0 stopped the job (its event callback threw, or it could not
    /// write the model directory or a checkpoint); the reason is its error.
    case stoppedByRank0(String)

    public var description: String {
        switch self {
        case let .configurationMismatch(ranks, workers):
            return "ranks \(ranks.map(String.init).joined(separator: ", ")) of \(workers) were started with other hyperparameters or data than rank 0; start every rank with the same arguments and the same data"
        case let .batchTooSmall(miniBatchSize, workers):
            return "mini_batch_size is \(miniBatchSize) but the job has \(workers) workers: mini_batch_size is the global batch and must be at least the number of workers"
        case let .weightsDiverged(ranks, epoch):
            return "after epoch \(epoch) the weights of ranks \(ranks.map(String.init).joined(separator: ", ")) differ from rank 0's"
        case let .resumeFailed(reason):
            return reason
        case let .stoppedByRank0(reason):
            return "rank 0 stopped the job: \(reason)"
        }
    }
}

/// FNV-1a, 64 bits: a stable hash for comparing configurations and weights
/// across ranks (not for security).
struct StableHash {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
    }

    mutating func combine(_ text: String) {
        var text = text + "\u{0}"
        text.withUTF8 { combine(UnsafeRawBufferPointer($0)) }
    }
}

extension Communicator {
    /// Runs `body` on rank 0 alone, and has every rank learn whether it
    /// threw: rank 0 rethrows its error, the others throw
    /// `DataParallelError.stoppedByRank0` with its description. So a failure
    /// of rank 0's own work (writing the model, a caller's event callback
    /// that stops the run) stops every rank at the same point instead of
    /// leaving them waiting in the next collective.
    func onRank0(_ body: () throws -> Void) throws {
        guard size > 1 else { return try body() }
        var failure: Error?
        var message: [UInt8] = []
        if isRoot {
            do { try body() } catch {
                failure = error
                message = Array("\(error)".utf8)
                if message.isEmpty { message = Array("\(type(of: error))".utf8) }
            }
        }
        broadcast(&message)
        if let failure { throw failure }
        if !message.isEmpty { throw DataParallelError.stoppedByRank0(String(decoding: message, as: UTF8.self)) }
    }

    /// Rank `root`'s tensors (parameters and buffers) on every rank; the
    /// stores have the same layout on every rank.
    func broadcast(_ store: inout ParameterStore, root: Int = 0) {
        guard size > 1 else { return }
        for index in store.tensors.indices where store.tensors[index].elementCount > 0 {
            broadcast(&store.tensors[index], root: root)
        }
    }
}

/// The contiguous share of `count` items that worker `rank` of `workers`
/// takes (the first ranks' shares are the smaller when it does not divide).
public func dataParallelShare(of count: Int, rank: Int, workers: Int) -> Range<Int> {
    (count * rank / workers)..<(count * (rank + 1) / workers)
}

/// The hash of a training job's inputs that every rank must agree on.
func configurationHash(_ configuration: TrainingConfiguration, train: ChannelDataset, validation: ChannelDataset) -> UInt64 {
    var hash = StableHash()
    for (key, value) in configuration.hyperparameters.sorted(by: { $0.key < $1.key }) { hash.combine("\(key)=\(value)") }
    for dataset in [train, validation] {
        hash.combine("\(dataset.name):\(dataset.count)")
        for sample in dataset.samples {
            hash.combine(sample.name)
            for url in [sample.image, sample.annotation] {
                let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? -1
                hash.combine("\(size)")
            }
        }
    }
    return hash.value
}

/// The hash of every tensor's bits, parameters and buffers.
func weightHash(_ parameters: ParameterStore) -> UInt64 {
    var hash = StableHash()
    for tensor in parameters.tensors {
        tensor.withUnsafeBufferPointer { hash.combine(UnsafeRawBufferPointer($0)) }
    }
    return hash.value
}
