import ArgumentParser
import Foundation
import Segmentation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network on SageMaker-layout channels and write a model directory.",
        discussion: """
            DATA holds train/, train_annotation/, validation/, validation_annotation/ and optionally label_map/. \
            Hyperparameters come from --hyperparameters (a SageMaker hyperparameters.json; string or native values) \
            and --set key=value overrides; num_classes and num_training_samples are required. \
            SageMaker's log lines go to stdout.
            """)

    @Option(help: "The data directory (channel layout).", completion: .directory)
    var data: String?

    @Option(name: .customLong("model-dir"), help: "Where to write the model directory.", completion: .directory)
    var modelDir: String?

    @Flag(help: "SageMaker container mode: hyperparameters, data and model paths under /opt/ml; on failure the reason goes to /opt/ml/output/failure.")
    var sagemaker = false

    @Option(name: .customLong("sagemaker-root"), help: "The directory standing for / in container mode (for tests).", completion: .directory)
    var sagemakerRoot: String?

    @Option(help: "A hyperparameters.json file.", completion: .file())
    var hyperparameters: String?

    @Option(name: .customLong("set"), help: "key=value hyperparameter override (repeatable).")
    var overrides: [String] = []

    @Option(name: .customLong("pretrained-weights"), help: "ImageNet backbone weights (else the cache; see segment pretrained).",
            completion: .file())
    var pretrainedWeights: String?

    @Option(name: .customLong("checkpoint-dir"), help: "Write a checkpoint here after every epoch.", completion: .directory)
    var checkpointDir: String?

    @Flag(help: "Continue from the checkpoint in --checkpoint-dir (same data and hyperparameters).")
    var resume = false

    @Option(help: "Incremental training: start from this model directory or model.tar.gz (same backbone, algorithm, crop_size, num_classes).",
            completion: .file())
    var model: String?

    func validate() throws {
        if resume && checkpointDir == nil && !sagemaker { throw ValidationError("--resume needs --checkpoint-dir") }
        if sagemaker && (data != nil || modelDir != nil || hyperparameters != nil) {
            throw ValidationError("--sagemaker takes the data, model and hyperparameters paths from /opt/ml; drop --data, --model-dir and --hyperparameters")
        }
        if !sagemaker && (data == nil || modelDir == nil) {
            throw ValidationError("--data and --model-dir are required (or --sagemaker)")
        }
        if sagemakerRoot != nil && !sagemaker { throw ValidationError("--sagemaker-root needs --sagemaker") }
    }

    func run() throws {
        guard sagemaker else { return try train(data: data!, modelDir: modelDir!, checkpointDir: checkpointDir, hyperparametersFile: hyperparameters) }
        let environment = SageMakerEnvironment(root: URL(fileURLWithPath: sagemakerRoot ?? "/"))
        do {
            try train(data: environment.dataDirectory.path, modelDir: environment.modelDirectory.path,
                      checkpointDir: checkpointDir ?? environment.checkpointDirectory.path,
                      hyperparametersFile: environment.hyperparametersFile.path)
        } catch {
            environment.writeFailure("\(error)")
            throw error
        }
    }

    private func train(data: String, modelDir: String, checkpointDir: String?, hyperparametersFile: String?) throws {
        let (configuration, notes) = try TrainingConfiguration.load(
            file: hyperparametersFile.map { URL(fileURLWithPath: $0) }, overrides: overrides)
        for note in notes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        let trainer = Trainer(configuration: configuration, dataDirectory: URL(fileURLWithPath: data),
                              modelDirectory: URL(fileURLWithPath: modelDir),
                              pretrainedWeights: pretrainedWeights.map { URL(fileURLWithPath: $0) },
                              checkpointDirectory: checkpointDir.map { URL(fileURLWithPath: $0) }, resume: resume || sagemaker,
                              priorModel: model.map { URL(fileURLWithPath: $0) })
        let summaries = try trainer.run(events: TrainingProgressPrinter().handle)
        if let best = summaries.max(by: { $0.validationMeanIoU < $1.validationMeanIoU }) {
            FileHandle.standardError.write(Data("best validation mIOU \(String(format: "%.4f", best.validationMeanIoU)) at epoch \(best.epoch); model in \(modelDir)\n".utf8))
        }
    }
}

/// Prints training events: SageMaker's log lines on stdout (unbuffered, so a
/// log collector sees each at once), notes on stderr, and on a terminal a
/// progress bar on stderr, cleared before each log line.
struct TrainingProgressPrinter {
    let showBar = isatty(STDERR_FILENO) == 1
    let standardError = FileHandle.standardError

    func handle(_ event: TrainingEvent) {
        switch event {
        case let .iteration(epoch, step, steps, meanLoss, rate):
            guard showBar else { break }
            let width = 30, filled = width * step / max(steps, 1)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            let line = String(format: "\repoch %d [%@] %d/%d  loss %.4f  %.2f samples/s", epoch, bar, step, steps, meanLoss, rate)
            standardError.write(Data((line + (step == steps ? "\n" : "")).utf8))
        case .note(let text): standardError.write(Data((text + "\n").utf8))
        case .progress(let line):
            if showBar { standardError.write(Data("\r\u{1B}[2K".utf8)) }
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        case .epoch(_, let lines):
            if showBar { standardError.write(Data("\r\u{1B}[2K".utf8)) }
            FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        }
    }
}
