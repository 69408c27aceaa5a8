import Foundation

/// `segment bench predict` (SPEC §9): the time per image of what a served
/// prediction computes after decoding: the network forward in inference
/// mode, logits resized to the input, and the argmax. No file decode or
/// encode. Randomly initialised weights (the time does not depend on them).
public enum PredictionBenchmark {
    public struct Result: Codable, Sendable {
        public var algorithm: String
        public var backbone: String
        public var stem: String
        public var size: Int
        public var batch: Int
        /// Per image.
        public var median_ms: Double
        public var images_per_s: Double
        public var peak_rss_mib: Double
        public var workers: Int
    }

    public static func run(configuration: NetworkConfiguration, size: Int, batch: Int, runs: Int = 5, warmup: Int = 1) -> Result {
        let (network, parameters) = SegmentationNetwork.make(configuration, seed: 1)
        let predictor = Predictor(model: SegmentationModel(network: network, parameters: parameters))
        var generator = SplitMix64(seed: 2)
        let images = Tensor.uniform([batch, 3, size, size], in: -2...2, using: &generator)
        var checksum = 0
        let median = ConvolutionBenchmark.medianMilliseconds(runs: runs, warmup: warmup, minimumWarmup: .zero) {
            for prediction in predictor.predict(batch: images) { checksum &+= Int(prediction.mask.values[0]) }
        }
        precondition(checksum >= 0)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Result(
            algorithm: configuration.algorithm.rawValue, backbone: configuration.backbone.rawValue,
            stem: configuration.stem.rawValue, size: size, batch: batch, median_ms: median / Double(batch),
            images_per_s: Double(batch) / (median / 1000), peak_rss_mib: Double(usage.ru_maxrss) / 1024,
            workers: Parallelism.workerCount)
    }
}
