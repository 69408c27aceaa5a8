import ArgumentParser
import Foundation
import Segmentation
import SegmentationMPI

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network on SageMaker-layout channels and write a model directory.",
        discussion: """
            DATA holds train/, train_annotation/, validation/, validation_annotation/ and optionally label_map/. \
            Hyperparameters come from --hyperparameters (a SageMaker hyperparameters.json; string or native values) \
            and --set key=value overrides; num_classes and num_training_samples are required. \
            SageMaker's log lines go to stdout. \
            Under mpirun (mpirun -np N segment train …) the job runs as N data-parallel workers; \
            mini_batch_size is the global batch (see Docs/distributed.md).
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
        guard MPICommunicator.isLaunchedByMPI else { return try runOneWorker(communicator: SingleProcessCommunicator()) }
        // One rank of a data-parallel job. Threads: SEGMENTATION_THREADS, else
        // this machine's cores shared by its ranks (set before any kernel runs).
        let environment = ProcessInfo.processInfo.environment
        if environment["SEGMENTATION_THREADS"] == nil,
            let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local > 0
        {
            setenv("SEGMENTATION_THREADS", "\(max(1, ProcessInfo.processInfo.activeProcessorCount / local))", 1)
        }
        // A rank's all-reduce thread shares its cores with the training thread:
        // have Open MPI yield the core while it waits for the other ranks
        // instead of spinning (unless the user chose otherwise).
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        let communicator = try MPICommunicator.world()
        do {
            try runOneWorker(communicator: communicator)
        } catch let error as DataParallelError {
            // Found by every rank alike: rank 0 reports it, all end cleanly (non-zero).
            // (`stoppedByRank0` reaches the other ranks when rank 0's own work failed;
            // rank 0 reports that error below and aborts the job.)
            if communicator.isRoot {
                if sagemaker { SageMakerEnvironment(root: sagemakerRootURL).writeFailure("\(error)") }
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            }
            MPICommunicator.finalize()
            throw ExitCode.failure
        } catch {
            // This rank alone failed: name it, and have mpirun stop the others.
            let reason = "rank \(communicator.rank) of \(communicator.size) failed: \(oneLine(error))"
            if sagemaker { SageMakerEnvironment(root: sagemakerRootURL).writeFailure(reason) }
            FileHandle.standardError.write(Data("Error: \(reason)\n".utf8))
            communicator.abort(exitCode: 1)
        }
        MPICommunicator.finalize()
    }

    private var sagemakerRootURL: URL { URL(fileURLWithPath: sagemakerRoot ?? "/") }

    private func oneLine(_ error: Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private func runOneWorker(communicator: any Communicator) throws {
        guard sagemaker else {
            return try train(data: data!, modelDir: modelDir!, checkpointDir: checkpointDir, hyperparametersFile: hyperparameters,
                             communicator: communicator, hostName: SageMakerLog.host)
        }
        let environment = SageMakerEnvironment(root: sagemakerRootURL)
        do {
            let hostName = try environment.resourceConfiguration()?.currentHost ?? SageMakerLog.host
            try train(data: environment.dataDirectory.path, modelDir: environment.modelDirectory.path,
                      checkpointDir: checkpointDir ?? environment.checkpointDirectory.path,
                      hyperparametersFile: environment.hyperparametersFile.path, communicator: communicator, hostName: hostName)
        } catch {
            if communicator.size == 1 { environment.writeFailure("\(error)") }
            throw error
        }
    }

    private func train(data: String, modelDir: String, checkpointDir: String?, hyperparametersFile: String?,
                       communicator: any Communicator, hostName: String) throws {
        let (configuration, notes) = try TrainingConfiguration.load(
            file: hyperparametersFile.map { URL(fileURLWithPath: $0) }, overrides: overrides)
        if communicator.isRoot { for note in notes { FileHandle.standardError.write(Data((note + "\n").utf8)) } }
        let trainer = Trainer(configuration: configuration, dataDirectory: URL(fileURLWithPath: data),
                              modelDirectory: URL(fileURLWithPath: modelDir),
                              pretrainedWeights: pretrainedWeights.map { URL(fileURLWithPath: $0) },
                              checkpointDirectory: checkpointDir.map { URL(fileURLWithPath: $0) }, resume: resume || sagemaker,
                              priorModel: model.map { URL(fileURLWithPath: $0) }, communicator: communicator,
                              hostName: hostName,
                              checkWeightsAcrossRanks: ProcessInfo.processInfo.environment["SEGMENTATION_CHECK_WEIGHTS"] == "1")
        let summaries = try trainer.run(events: TrainingProgressPrinter().handle)
        if communicator.isRoot, let best = summaries.max(by: { $0.validationMeanIoU < $1.validationMeanIoU }) {
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
