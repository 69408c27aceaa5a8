/// Early stopping on validation mIOU (SPEC §5).
///
/// After each epoch: improvement = (mIOU − best) / best (with best = 0, any
/// gain counts). An improvement above `tolerance` resets the stall counter
/// and becomes the best; anything else (including no change) adds one stalled
/// epoch. Training stops once stalled epochs ≥ `patience` and at least
/// `minimumEpochs` epochs have run.
public struct EarlyStopping: Sendable, Equatable, Codable {
    public let minimumEpochs: Int
    public let patience: Int
    public let tolerance: Double
    public private(set) var best: Double = 0
    public private(set) var stalledEpochs = 0
    public private(set) var epochsRun = 0

    public init(minimumEpochs: Int, patience: Int, tolerance: Double) {
        self.minimumEpochs = minimumEpochs
        self.patience = patience
        self.tolerance = tolerance
    }

    public init(configuration c: TrainingConfiguration) {
        self.init(minimumEpochs: c.earlyStoppingMinEpochs, patience: c.earlyStoppingPatience,
                  tolerance: c.earlyStoppingTolerance)
    }

    /// Records one epoch's validation mIOU; returns true when training should stop.
    public mutating func record(meanIoU: Double) -> Bool {
        epochsRun += 1
        let improved = best == 0 ? meanIoU > 0 : (meanIoU - best) / best > tolerance
        if improved {
            best = meanIoU
            stalledEpochs = 0
        } else {
            stalledEpochs += 1
        }
        return stalledEpochs >= patience && epochsRun >= minimumEpochs
    }
}
