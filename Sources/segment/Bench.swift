import ArgumentParser
import Foundation
import Segmentation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the GEMM-bound layers. Build with -c release for meaningful numbers.",
        subcommands: [BenchConv.self, BenchModel.self, BenchPredict.self, BenchData.self])
}

struct BenchConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Forward and backward time of ResNet-50's GEMM-bound convolutions (crop 240) against a bare cblas_sgemm of the same M×N×K.")

    @Option(help: "Timed runs per measurement (the median is reported).")
    var runs = 7

    @Option(help: "Untimed warm-up runs before each measurement.")
    var warmup = 2

    @Option(help: "Batch size.")
    var batch = 2

    @Option(name: .customLong("layer"), help: ArgumentHelp(
        "A layer to time instead of ResNet-50's, as the table names them: '3x3 2048->256 d12 @60x60' (kernel, input->output channels, optional dilation, input size; stride 1, size-preserving padding). Repeatable.",
        valueName: "layer"))
    var layers: [String] = []

    @Flag(help: "Time the inference forward only (the paths and workspace a prediction uses) instead of a training step's forward and backward.")
    var inference = false

    @Flag(help: "Print a JSON array instead of a table.")
    var json = false

    func validate() throws {
        for layer in layers where ConvolutionBenchmark.Shape(parsing: layer, batch: batch) == nil {
            throw ValidationError("--layer '\(layer)' is not a layer: write it as '3x3 2048->256 d12 @60x60' (odd square kernel, channels, optional dilation, input size)")
        }
        guard runs >= 5 else { throw ValidationError("--runs must be at least 5 (a median of fewer is noise)") }
        guard warmup >= 1 else { throw ValidationError("--warmup must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be positive") }
    }

    func run() throws {
        let shapes = layers.isEmpty
            ? ConvolutionBenchmark.resnet50Shapes(batch: batch)
            : layers.map { ConvolutionBenchmark.Shape(parsing: $0, batch: batch)! }
        if !json {
            print("workers: \(Parallelism.workerCount); \(BLAS.configuration)")
            print("batch \(batch), median of \(runs) runs after \(warmup) warm-up; reference: bare cblas_sgemm of the same M×N×K on \(Parallelism.workerCount) OpenBLAS threads")
            print(pad("layer", 34) + pad("pass", 10) + pad("ms", 10, right: true) + pad("GFLOP/s", 10, right: true)
                  + pad("sgemm", 10, right: true) + pad("ratio", 8, right: true) + pad("cores", 7, right: true))
        }
        let rows = ConvolutionBenchmark.run(shapes: shapes, runs: runs, warmup: warmup,
                                            mode: inference ? .inference : .training) { row in
            guard !json else { return }
            print(pad(row.name, 34) + pad(row.pass, 10) + pad(String(format: "%.2f", row.median_ms), 10, right: true)
                  + pad(String(format: "%.1f", row.gflops), 10, right: true)
                  + pad(String(format: "%.1f", row.sgemm_gflops), 10, right: true)
                  + pad(String(format: "%.3f", row.ratio), 8, right: true)
                  + pad(String(format: "%.2f", row.coresBusy), 7, right: true))
        }
        if json {
            try printJSON(rows)
        }
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Time one inference forward, or with --train one whole training step (forward with aux head, loss, backward, SGD update).")

    @OptionGroup var network: BenchNetworkOptions

    @Option(help: "Square input side in pixels (default: crop_size's default).")
    var crop = TrainingConfiguration.defaults.cropSize

    @Option(help: "Images per batch.")
    var batch = 2

    @Flag(help: "Time a training step instead of an inference forward.")
    var train = false

    @OptionGroup var timing: BenchTimingOptions

    func validate() throws {
        guard crop >= 32, batch >= 1 else { throw ValidationError("--crop ≥ 32, --batch ≥ 1") }
    }

    func run() throws {
        let (runs, json) = (timing.runs, timing.json)
        let result = ModelBenchmark.run(.init(configuration: network.configuration(auxiliaryHead: true), crop: crop, batch: batch,
                                              training: train, runs: runs, warmup: timing.warmup))
        if json {
            try printJSON(result)
        } else {
            print("\(result.algorithm) \(result.backbone) (\(result.stem) stem), crop \(crop), batch \(batch), \(result.pass), \(result.workers) workers")
            print(String(format: "median %.1f ms over %d runs   %.1f GFLOP/s (convolutions)   %.2f images/s   peak RSS %.0f MiB (tensors %.0f MiB)",
                         result.median_ms, runs, result.gflops, result.images_per_s, result.peak_rss_mib,
                         result.peak_tensor_mib))
        }
    }
}

struct BenchPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Time per image of a prediction: inference forward, logits resized to the input, argmax (no decode or encode).")

    @OptionGroup var network: BenchNetworkOptions

    @Option(help: "Square image side in pixels.")
    var size = 480

    @Option(help: "Images per network evaluation (throughput); 1 gives the latency of one image.")
    var batch = 1

    @OptionGroup var timing: BenchTimingOptions

    func validate() throws {
        guard size >= 32, batch >= 1 else { throw ValidationError("--size ≥ 32, --batch ≥ 1") }
    }

    func run() throws {
        let (runs, json) = (timing.runs, timing.json)
        let result = PredictionBenchmark.run(configuration: network.configuration(auxiliaryHead: false), size: size, batch: batch,
                                             runs: runs, warmup: timing.warmup)
        if json {
            try printJSON(result)
        } else {
            print("\(result.algorithm) \(result.backbone) (\(result.stem) stem), \(size)×\(size), batch \(batch), \(result.workers) workers")
            print(String(format: "median %.1f ms per image over %d runs   %.2f images/s   peak RSS %.0f MiB",
                         result.median_ms, runs, result.images_per_s, result.peak_rss_mib))
        }
    }
}

/// The network a whole-model benchmark builds (randomly initialised).
struct BenchNetworkOptions: ParsableArguments {
    @Option(help: "fcn, psp or deeplab.")
    var algorithm: SegmentationAlgorithm = .fcn

    @Option(help: "resnet-50 or resnet-101.")
    var backbone: ResNetDepth = .resnet50

    @Option(help: "deep (GluonCV v1s, the default) or standard (torchvision).")
    var stem: String = "deep"

    @Option(name: .customLong("num-classes"), help: "Classes of the classifier.")
    var numClasses = 21

    func validate() throws {
        guard ResNetStem(rawValue: stem) != nil else { throw ValidationError("--stem must be deep or standard") }
        guard numClasses >= 2 else { throw ValidationError("--num-classes must be at least 2") }
    }

    func configuration(auxiliaryHead: Bool) -> NetworkConfiguration {
        NetworkConfiguration(algorithm: algorithm, backbone: backbone, stem: ResNetStem(rawValue: stem)!, classCount: numClasses,
                             auxiliaryHead: auxiliaryHead)
    }
}

/// How a whole-model benchmark times and prints.
struct BenchTimingOptions: ParsableArguments {
    @Option(help: "Timed runs (the median is reported).")
    var runs = 5

    @Option(help: "Untimed warm-up runs.")
    var warmup = 1

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard runs >= 5 else { throw ValidationError("--runs must be at least 5 (a median of fewer is noise)") }
        guard warmup >= 0 else { throw ValidationError("--warmup cannot be negative") }
    }
}

struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Images per second through decoding + the training transform and the validation transforms (one thread), on generated 500×375 JPEGs with PNG masks.")

    @Option(help: "Generated images.")
    var images = 32

    @Option(name: .customLong("base-size"), help: "base_size of the training transform.")
    var baseSize = TrainingConfiguration.defaults.baseSize

    @Option(name: .customLong("crop-size"), help: "crop_size of the training and validation transforms.")
    var cropSize = TrainingConfiguration.defaults.cropSize

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let result = try DataBenchmark.run(images: images, baseSize: baseSize, cropSize: cropSize)
        if json {
            try printJSON(result)
        } else {
            print("\(result.images) images of \(result.image_size), base \(baseSize), crop \(cropSize), one thread, median of 3 passes")
            print(String(format: "training (decode + transform): %.1f images/s", result.train_images_per_s))
            print(String(format: "validation, whole images:      %.1f images/s", result.validation_whole_images_per_s))
            print(String(format: "validation, center crops:      %.1f images/s", result.validation_crop_images_per_s))
            print(String(format: "loader under load: median wait %.2f ms per batch of 2 while the consumer computes %.1f ms per batch",
                         result.loader_wait_ms, result.consumer_step_ms))
        }
    }
}

/// Prints `value` as pretty, key-sorted JSON (the `--json` output of every bench).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
