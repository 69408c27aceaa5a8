import Foundation

/// The per-iteration learning rate (SPEC §5), a pure function of the iteration.
///
///     I = ⌊num_training_samples / mini_batch_size⌋ iterations per epoch (at least 1)
///     N = epochs·I − 1,  T = min(iteration, N)
///     poly:    η₀ · (1 − T/N)^0.9
///     cosine:  η₀ · (1 + cos(π·T/N)) / 2
///     step:    η₀ · factor^(number of step epochs e with e·I ≤ T)
///
/// With N = 0 (a single iteration in all) T/N is taken as 0.
public struct LearningRateSchedule: Sendable, Equatable {
    public var kind: LearningRateScheduler
    public var baseLearningRate: Double
    public var iterationsPerEpoch: Int
    public var lastIteration: Int
    public var stepEpochs: [Int]
    public var factor: Double
    public static let polyPower = 0.9

    public init(configuration c: TrainingConfiguration) {
        kind = c.lrScheduler
        baseLearningRate = c.learningRate
        iterationsPerEpoch = max(1, c.numTrainingSamples / c.miniBatchSize)
        lastIteration = c.epochs * iterationsPerEpoch - 1
        stepEpochs = c.lrSchedulerStep ?? []
        factor = c.lrSchedulerFactor
    }

    public func callAsFunction(_ iteration: Int) -> Double {
        let t = Double(min(max(iteration, 0), lastIteration))
        let progress = lastIteration > 0 ? t / Double(lastIteration) : 0
        switch kind {
        case .poly:
            return baseLearningRate * pow(1 - progress, Self.polyPower)
        case .cosine:
            return baseLearningRate * (1 + cos(Double.pi * progress)) / 2
        case .step:
            let drops = stepEpochs.filter { Double($0 * iterationsPerEpoch) <= t }.count
            return baseLearningRate * pow(factor, Double(drops))
        }
    }
}
