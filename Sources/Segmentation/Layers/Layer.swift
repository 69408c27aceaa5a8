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
    /// Multiply-adds of every convolution run with this context (for GFLOP/s reports).
    public internal(set) var convolutionMultiplyAdds = 0
    /// (running-mean ID, running-variance ID, this batch's statistics), in forward order.
    public private(set) var batchStatistics: [(mean: ParameterID, variance: ParameterID, statistics: BatchNormStatistics)] = []

    public init(mode: Mode, workspace: Workspace = Workspace(), seed: UInt64 = 0) {
        self.mode = mode
        self.workspace = workspace
        self.nextDropoutSeed = SplitMix64.mix(seed ^ 0xD0D0_D0D0)
    }

    /// A fresh seed for one dropout layer's mask.
    func dropoutSeed() -> UInt64 {
        nextDropoutSeed = SplitMix64.mix(nextDropoutSeed &+ 0x9E37_79B9_7F4A_7C15)
        return nextDropoutSeed
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
}
