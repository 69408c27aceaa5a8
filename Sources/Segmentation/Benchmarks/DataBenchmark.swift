import Foundation

/// `segment bench data`: images per second through decoding plus the
/// training transform, and through the validation transforms, on a generated
/// set of 500×375 JPEGs with PNG masks, on one thread (the loader's
/// background worker) so the figure is what the loop can count on while the
/// network keeps both cores busy.
public enum DataBenchmark {
    public struct Result: Codable, Sendable {
        public var images: Int
        public var image_size: String
        public var base_size: Int
        public var crop_size: Int
        /// decode JPEG + PNG, label map, training transform (one thread)
        public var train_images_per_s: Double
        /// decode + normalize at the image's own size (validation_mini_batch_size = 1)
        public var validation_whole_images_per_s: Double
        /// decode + short side to crop + center crop (validation_mini_batch_size > 1)
        public var validation_crop_images_per_s: Double
        /// The background loader under load: median wait in `next()` per batch
        /// (batch 2) while the consumer runs a convolution on both cores for
        /// `consumer_step_ms` per batch; ~0 means the loop never waits.
        public var loader_wait_ms: Double
        public var consumer_step_ms: Double
    }

    /// Writes `count` textured 500×375 JPEGs and 4-class PNG masks in the channel layout under `directory`.
    public static func generateDataset(count: Int, in directory: URL, seed: UInt64 = 1) throws -> ChannelDataset {
        let (width, height) = (500, 375)
        var generator = SplitMix64(seed: seed)
        for split in ["train", "train_annotation"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(split), withIntermediateDirectories: true)
        }
        for index in 0..<count {
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            var labels = [UInt8](repeating: 0, count: width * height)
            let (cx, cy, r) = (Int.random(in: 100..<400, using: &generator), Int.random(in: 80..<300, using: &generator),
                               Int.random(in: 40..<120, using: &generator))
            for y in 0..<height {
                for x in 0..<width {
                    let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r
                    let label: UInt8 = inside ? UInt8(1 + (x / 60 + y / 60) % 3) : 0
                    let noise = UInt8(truncatingIfNeeded: generator.next() & 31)
                    let base: (UInt8, UInt8, UInt8) = inside ? (180, 90, 60) : (60, 120, 160)
                    let stripe: UInt8 = ((x + y) / 8) % 2 == 0 ? 20 : 0
                    let i = (y * width + x) * 3
                    pixels[i] = base.0 &+ noise &+ stripe
                    pixels[i + 1] = base.1 &+ noise
                    pixels[i + 2] = base.2 &+ noise
                    labels[y * width + x] = label
                }
            }
            let name = String(format: "%05d", index)
            try ImageCodec.encodeJPEG(rgb: RGBImage(width: width, height: height, pixels: pixels), quality: 90)
                .write(to: directory.appendingPathComponent("train/\(name).jpg"))
            try ImageCodec.encodePNG(mask: ClassMask(width: width, height: height, values: labels))
                .write(to: directory.appendingPathComponent("train_annotation/\(name).png"))
        }
        return try ChannelDataset(dataDirectory: directory, split: .train)
    }

    /// Throws a `ConfigurationError` for a base or crop size training would refuse.
    public static func run(images count: Int = 32, baseSize: Int = TrainingConfiguration.defaults.baseSize,
                           cropSize: Int = TrainingConfiguration.defaults.cropSize, rounds: Int = 3) throws -> Result {
        var sizes = TrainingConfiguration(numClasses: 2, numTrainingSamples: 1)
        (sizes.baseSize, sizes.cropSize) = (baseSize, cropSize)
        try sizes.validate()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-data-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataset = try generateDataset(count: count, in: directory)
        let training = TrainingTransform(baseSize: baseSize, cropSize: cropSize)
        let wholeImages = ValidationTransform(cropSize: nil)
        let crops = ValidationTransform(cropSize: cropSize)
        func rate(_ body: (Int) throws -> Void) rethrows -> Double {
            var samples: [Double] = []
            let clock = ContinuousClock()
            for _ in 0..<rounds {
                let elapsed = try clock.measure { for index in 0..<count { try body(index) } }
                samples.append(Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
            }
            return samples.sorted()[samples.count / 2]
        }
        var generator = SplitMix64(seed: 9)
        let trainRate = try rate { index in
            let sample = try dataset.loadSample(index, classCount: 4)
            _ = training(image: sample.image, labels: sample.labels, using: &generator)
        }
        let wholeRate = try rate { index in
            let sample = try dataset.loadSample(index, classCount: 4)
            _ = wholeImages(image: sample.image, labels: sample.labels)
        }
        let cropRate = try rate { index in
            let sample = try dataset.loadSample(index, classCount: 4)
            _ = crops(image: sample.image, labels: sample.labels)
        }
        let (wait, step) = try loaderWait(dataset: dataset, baseSize: baseSize, cropSize: cropSize)
        return Result(images: count, image_size: "500x375", base_size: baseSize, crop_size: cropSize,
                      train_images_per_s: trainRate, validation_whole_images_per_s: wholeRate,
                      validation_crop_images_per_s: cropRate, loader_wait_ms: wait, consumer_step_ms: step)
    }

    /// Runs the prefetching loader against a consumer that keeps both cores
    /// busy with a 3×3 256→256 convolution on 2×60×60 (a slice of a real
    /// training step) and measures how long `next()` blocks.
    static func loaderWait(dataset: ChannelDataset, baseSize: Int, cropSize: Int) throws -> (waitMs: Double, stepMs: Double) {
        let geometry = ConvGeometry(batch: 2, inputChannels: 256, outputChannels: 256, inputHeight: 60, inputWidth: 60,
                                    kernelSize: 3, padding: 1)
        var generator = SplitMix64(seed: 4)
        let x = Tensor.uniform(geometry.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(geometry.weightShape, in: -0.1...0.1, using: &generator)
        let workspace = Workspace()
        let loader = TrainingBatchLoader(dataset: dataset, batchSize: 2, classCount: 4,
                                         transform: TrainingTransform(baseSize: baseSize, cropSize: cropSize), seed: 1)
        defer { loader.stop() }
        let clock = ContinuousClock()
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15 }
        _ = try loader.next()  // the first batch has no head start
        var waits: [Double] = [], steps: [Double] = []
        for _ in 0..<16 {
            steps.append(ms(clock.measure { _ = conv2d(x, weight: w, geometry: geometry, workspace: workspace) }))
            var batch: Batch?
            waits.append(ms(try clock.measure { batch = try loader.next() }))
            _ = batch
        }
        return (waits.sorted()[waits.count / 2], steps.sorted()[steps.count / 2])
    }
}
