/// Whether a forward pass trains (batch statistics, dropout, caches for
/// backward) or infers (running statistics, no dropout, nothing kept).
public enum Mode: Sendable {
    case training
    case inference
}

/// Per-pass state shared by the layers of one forward (and its backward):
/// the mode, the scratch workspace, the dropout seed sequence, and the batch
/// statistics that the training step folds into the BN running buffers.
///
/// One context per forward pass; not shared between threads.
public final class ForwardContext {
    public let mode: Mode
    public let workspace: Workspace
    private var nextDropoutSeed: UInt64
    /// Whether convolutions may use Winograd and padding-tap skipping
    /// (Kernels/Winograd.swift, PaddingTaps.swift): by default in inference
    /// only (`FastConvolutions.isEnabled(for:)`).
    public var usesFastConvolutions: Bool
    /// Multiply-adds of every convolution run with this context (for GFLOP/s reports).
    public internal(set) var convolutionMultiplyAdds = 0
    /// Data-parallel training with syncbn (SPEC §10): sums BN statistics over
    /// every worker, so training-mode BN normalizes with the whole global
    /// batch's statistics. Nil: this worker's batch alone.
    public var batchNormReduction: BatchNormReduction?
    /// Data-parallel training: the global-batch index of this worker's first
    /// sample, so a sample's dropout mask does not depend on the split.
    public var firstSample = 0
    /// (running-mean ID, running-variance ID, this batch's statistics), in forward order.
    public private(set) var batchStatistics: [(mean: ParameterID, variance: ParameterID, statistics: BatchNormStatistics)] = []

    public init(mode: Mode, workspace: Workspace = Workspace(), seed: UInt64 = 0) {
        self.mode = mode
        self.workspace = workspace
        self.usesFastConvolutions = FastConvolutions.isEnabled(for: mode)
        self.nextDropoutSeed = SplitMix64.mix(seed ^ 0xD0D0_D0D0)
    }

    /// A fresh seed for one dropout layer's mask.
    func dropoutSeed() -> UInt64 {
        nextDropoutSeed = SplitMix64.mix(nextDropoutSeed &+ 0x9E37_79B9_7F4A_7C15)
        return nextDropoutSeed
    }

    /// A fresh seed for one dropout layer's mask over `input`, whose samples
    /// start at `firstSample` of the global batch: the mask element i of this
    /// worker is element firstSample·(C·H·W) + i of the whole batch's mask.
    func dropoutSeed(for input: Shape) -> UInt64 {
        Segmentation.dropoutSeed(dropoutSeed(), skippingElements: firstSample * (input.elementCount / max(1, input.batch)))
    }

    func record(mean: ParameterID, variance: ParameterID, statistics: BatchNormStatistics) {
        batchStatistics.append((mean, variance, statistics))
    }

    /// Folds the recorded batch statistics into the running buffers
    /// (r ← 0.9·r + 0.1·batch) and forgets them.
    public func updateRunningStatistics(in parameters: inout ParameterStore, momentum: Float = 0.1) {
        for entry in batchStatistics {
            var mean = parameters.take(entry.mean), variance = parameters.take(entry.variance)
            Segmentation.updateRunningStatistics(
                runningMean: &mean, runningVariance: &variance, batch: entry.statistics, momentum: momentum)
            parameters.put(entry.mean, mean)
            parameters.put(entry.variance, variance)
        }
        batchStatistics.removeAll()
    }

    /// Data-parallel training without syncbn: replaces each recorded batch
    /// mean and variance by its average over the workers, so the running
    /// buffers stay identical on every rank (DDP broadcasts rank 0's instead).
    public func averageBatchStatistics(reduce: BatchNormReduction, workers: Int) {
        guard workers > 1, !batchStatistics.isEmpty else { return }
        var values: [Double] = []
        for entry in batchStatistics {
            values += entry.statistics.mean.scalars.map(Double.init) + entry.statistics.variance.scalars.map(Double.init)
        }
        values.withUnsafeMutableBufferPointer { reduce($0) }
        var offset = 0
        func average(_ tensor: inout Tensor) {
            tensor.withUnsafeMutableBufferPointer { p in
                for c in p.indices { p[c] = Float(values[offset + c] / Double(workers)) }
                offset += p.count
            }
        }
        for index in batchStatistics.indices {
            average(&batchStatistics[index].statistics.mean)
            average(&batchStatistics[index].statistics.variance)
        }
    }
}
