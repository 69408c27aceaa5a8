import Foundation

/// `segment bench model`: the time of one inference forward, or of one whole
/// training step (forward in training mode with the aux head, the SPEC loss,
/// backward, SGD update, BN running-statistics update), for any network.
public enum ModelBenchmark {
    public struct Settings: Sendable {
        public var configuration: NetworkConfiguration
        public var crop: Int
        public var batch: Int
        public var training: Bool
        public var runs: Int
        public var warmup: Int

        public init(configuration: NetworkConfiguration, crop: Int, batch: Int, training: Bool, runs: Int = 5, warmup: Int = 1) {
            self.configuration = configuration
            self.crop = crop
            self.batch = batch
            self.training = training
            self.runs = runs
            self.warmup = warmup
        }
    }

    public struct Result: Codable, Sendable {
        public var algorithm: String
        public var backbone: String
        public var stem: String
        public var crop: Int
        public var batch: Int
        public var pass: String
        public var median_ms: Double
        /// Convolution FLOPs (2 × multiply-adds; backward counted as 2× forward) per second.
        public var gflops: Double
        public var images_per_s: Double
        public var peak_rss_mib: Double
        /// The peak of live tensor storage (`TensorMemory`): what the network
        /// and its training state hold, without the allocator's and the
        /// process's share of `peak_rss_mib`.
        public var peak_tensor_mib: Double
        public var workers: Int
    }

    public static func run(_ settings: Settings) -> Result {
        let network: SegmentationNetwork
        var parameters: ParameterStore
        (network, parameters) = SegmentationNetwork.make(settings.configuration, seed: 1)
        var generator = SplitMix64(seed: 2)
        let images = Tensor.uniform([settings.batch, 3, settings.crop, settings.crop], in: -2...2, using: &generator)
        let classes = settings.configuration.classCount
        let labels = (0..<(settings.batch * settings.crop * settings.crop)).map { _ in
            UInt8.random(in: 0..<UInt8(classes), using: &generator)
        }
        let batch = Batch(images: images, labels: labels, names: (0..<settings.batch).map { "image\($0)" })
        let workspace = settings.training ? Workspace.training() : Workspace()
        // The training step is the trainer's own (TrainingStep), so this times what `segment train` runs.
        let trainingStep = settings.training
            ? TrainingStep(network: network, parameters: parameters, loss: SegmentationLoss(), workspace: workspace) : nil
        var optimizer = Optimizer(.sgd, parameters: parameters)
        var multiplyAdds = 0
        var step = 0

        let median = ConvolutionBenchmark.medianMilliseconds(runs: settings.runs, warmup: settings.warmup, minimumWarmup: .zero) {
            step += 1
            if let trainingStep {
                _ = trainingStep.run(batch, seed: UInt64(step), parameters: &parameters, optimizer: &optimizer, learningRate: 1e-4)
                multiplyAdds = trainingStep.lastConvolutionMultiplyAdds * 3  // forward + data and weight gradients
            } else {
                let context = ForwardContext(mode: .inference, workspace: workspace)
                _ = network.forward(images, parameters: parameters, context: context)
                multiplyAdds = context.convolutionMultiplyAdds
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let c = settings.configuration
        return Result(
            algorithm: c.algorithm.rawValue, backbone: c.backbone.rawValue, stem: c.stem.rawValue,
            crop: settings.crop, batch: settings.batch, pass: settings.training ? "train" : "inference",
            median_ms: median, gflops: 2 * Double(multiplyAdds) / (median * 1e6),
            images_per_s: Double(settings.batch) / (median / 1000),
            peak_rss_mib: Double(usage.ru_maxrss) / 1024,
            peak_tensor_mib: Double(TensorMemory.peakBytes) / Double(1 << 20), workers: Parallelism.workerCount)
    }
}
