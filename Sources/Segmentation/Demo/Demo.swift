import Foundation

/// The README's main job (`segment demo`, SPEC §9): generate the synthetic
/// shapes data set in the channel layout, train a ResNet-50 network on it
/// from scratch, score the best model on the validation channel against the
/// most-frequent-class baseline, and draw predictions.
///
/// Layout under `output`: `data/` (the channels), `model/` (the SPEC §6 model
/// directory, training-curves.png included), `predictions/` (NAME.png masks
/// and NAME_overlay.png pictures for validation images).
public struct Demo: Sendable {
    public var output: URL
    public var shapes = SyntheticShapes()
    public var trainImages = 400
    public var validationImages = 40
    /// Validation images drawn into predictions/.
    public var predictedImages = 12
    /// The recipe: SageMaker hyperparameters (all strings, as in a
    /// hyperparameters.json). num_classes and num_training_samples follow the
    /// data and are set by `run`.
    public var hyperparameters: [String: String] = Demo.recipe
    /// `key=value` overrides of the recipe (`segment demo --set`).
    public var overrides: [String] = []

    /// Chosen so that a ResNet-50 FCN learns the shapes from scratch in a few
    /// minutes on 2 cores (see Docs/training.md, "Learning from scratch").
    public static let recipe: [String: String] = [
        "backbone": "resnet-50", "algorithm": "fcn", "use_pretrained_model": "False",
        "crop_size": "64", "base_size": "96", "epochs": "10", "mini_batch_size": "8",
        "validation_mini_batch_size": "1", "optimizer": "adam", "learning_rate": "0.001",
        "lr_scheduler": "poly", "_logging_frequency": "10",
    ]

    public init(output: URL) {
        self.output = output
    }

    public var dataDirectory: URL { output.appendingPathComponent("data") }
    public var modelDirectory: URL { output.appendingPathComponent("model") }
    public var predictionsDirectory: URL { output.appendingPathComponent("predictions") }

    /// Makes `output` ready for a run (see `run`); `--data-only` calls it alone.
    public func prepareOutput() throws {
        let manager = FileManager.default
        let contents = (try? manager.contentsOfDirectory(atPath: output.path)) ?? []
        if !contents.isEmpty {
            guard contents.contains(Self.marker) else { throw DemoError.foreignOutput(output.path) }
            for directory in [dataDirectory, modelDirectory, predictionsDirectory] where manager.fileExists(atPath: directory.path) {
                try manager.removeItem(at: directory)
            }
        }
        try manager.createDirectory(at: output, withIntermediateDirectories: true)
        try writeAtomically(Data("written by segment demo; a rerun replaces data/, model/ and predictions/\n".utf8),
                            to: output.appendingPathComponent(Self.marker))
    }

    public struct Result: Sendable {
        public var epochs: [EpochSummary]
        /// The best model (model_best) scored on the validation channel.
        public var validation: ConfusionMatrix
        /// Predicting the most frequent training class everywhere.
        public var baseline: ConfusionMatrix
        public var baselineClass: Int
        public var predictionFiles: [URL]
        public var seconds: Double
    }

    /// Marks `output` as the demo's, so a rerun may replace what it wrote.
    static let marker = ".segment-demo"

    /// Runs every step; `events` gets the trainer's events and notes of each step.
    ///
    /// A rerun into the same `output` first removes the data, model and
    /// predictions of the earlier run (so no stale file is trained on or left
    /// beside the new ones). An `output` that exists, is not empty and was not
    /// written by the demo is refused rather than written into.
    public func run(events: (TrainingEvent) throws -> Void = { _ in }) throws -> Result {
        let clock = ContinuousClock(), start = clock.now
        try prepareOutput()
        try events(.note("writing \(trainImages) training and \(validationImages) validation images of \(shapes.classCount) classes (\(shapes.classNames.joined(separator: ", "))) to \(dataDirectory.path)"))
        try shapes.write(to: dataDirectory, trainCount: trainImages, validationCount: validationImages)

        var values = hyperparameters
        values["num_classes"] = String(shapes.classCount)
        values["num_training_samples"] = String(trainImages)
        let (configuration, notes) = try TrainingConfiguration.load(base: values, overrides: overrides)
        for note in notes { try events(.note(note)) }
        let epochs = try Trainer(configuration: configuration, dataDirectory: dataDirectory, modelDirectory: modelDirectory)
            .run(events: events)

        try events(.note("scoring the best model on the validation channel"))
        let predictor = try Predictor(contentsOf: modelDirectory)
        let validation = try ChannelDataset(dataDirectory: dataDirectory, split: .validation)
        let matrix = try predictor.evaluate(validation)

        // The baseline: the most frequent class of the training labels, everywhere.
        let train = try ChannelDataset(dataDirectory: dataDirectory, split: .train)
        var frequency = [Int](repeating: 0, count: shapes.classCount)
        for index in 0..<train.count {
            for label in try train.loadSample(index, classCount: shapes.classCount).labels where Int(label) < frequency.count {
                frequency[Int(label)] += 1
            }
        }
        let baselineClass = frequency.indices.max { frequency[$0] < frequency[$1] }!
        var baseline = ConfusionMatrix(classCount: shapes.classCount)
        for index in 0..<validation.count {
            let labels = try validation.loadSample(index, classCount: shapes.classCount).labels
            baseline.add(predictions: [UInt8](repeating: UInt8(baselineClass), count: labels.count), labels: labels)
        }

        try events(.note("drawing predictions for \(min(predictedImages, validation.count)) validation images into \(predictionsDirectory.path)"))
        let files = PredictionFiles(directory: predictionsDirectory, format: .png, overlay: true, classNames: shapes.classNames)
        var written: [URL] = []
        for sample in validation.samples.prefix(predictedImages) {
            let image = try ImageCodec.decodeImage(contentsOf: sample.image)
            written += try files.write(predictor.predict(image), of: image, name: sample.name)
        }
        let elapsed = clock.now - start
        return Result(epochs: epochs, validation: matrix, baseline: baseline, baselineClass: baselineClass,
                      predictionFiles: written,
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
}

public enum DemoError: Error, CustomStringConvertible, Equatable {
    case foreignOutput(String)

    public var description: String {
        switch self {
        case .foreignOutput(let path):
            return "\(path) already holds files that segment demo did not write: choose an empty or new --output directory"
        }
    }
}
