import Foundation

/// What a training run reports while it runs.
public enum TrainingEvent: Sendable {
    /// A remark for the log (configuration notes, warnings, file locations).
    case note(String)
    /// A SageMaker `#progress_notice` line, every `_logging_frequency` iterations.
    case progress(String)
    /// An epoch finished: its summary and its SageMaker log lines.
    case epoch(EpochSummary, lines: [String])
    /// One training iteration done (for progress bars): `step` of `steps` in `epoch`, the running mean loss.
    case iteration(epoch: Int, step: Int, steps: Int, meanLoss: Double, samplesPerSecond: Double)
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFiniteLoss(epoch: Int, iteration: Int, value: Float)
    case emptyChannel(String)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(epoch, iteration, value):
            return "the training loss became \(value) at epoch \(epoch), iteration \(iteration): lower learning_rate, or check the data"
        case let .emptyChannel(name):
            return "the \(name) channel holds no image/annotation pairs"
        }
    }
}

/// The training loop (SPEC §5) over SageMaker channels, writing the model
/// directory (SPEC §6). The CLI is a thin layer over it; a Swift program can
/// drive it directly and receive events through a callback.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public let dataDirectory: URL
    public let modelDirectory: URL
    public let pretrainedWeights: URL?
    public let cacheDirectory: URL
    /// Whether a missing pretrained backbone may be downloaded.
    public let allowDownload: Bool
    /// Where a checkpoint is written after every epoch (nil: none).
    public let checkpointDirectory: URL?
    /// Continue from the checkpoint in `checkpointDirectory` when there is one.
    public let resume: Bool
    /// Incremental training: start from this model (directory or model.tar.gz)
    /// instead of ImageNet weights; its backbone, algorithm, crop size and
    /// class count must match the configuration.
    public let priorModel: URL?
    /// The data-parallel workers (SPEC §10): every rank runs a `Trainer`
    /// with the same arguments. Rank 0 alone reports events and writes the
    /// model directory and checkpoints.
    public let communicator: any Communicator
    /// The host name in the SageMaker log lines (`algo-1`, `algo-2`, …).
    public let hostName: String
    /// Debug check: after every epoch, compare a hash of the weights across
    /// the ranks and fail when they differ.
    public let checkWeightsAcrossRanks: Bool

    public init(
        configuration: TrainingConfiguration, dataDirectory: URL, modelDirectory: URL,
        pretrainedWeights: URL? = nil, cacheDirectory: URL = PretrainedBackbone.defaultCacheDirectory(),
        allowDownload: Bool = true, checkpointDirectory: URL? = nil, resume: Bool = false, priorModel: URL? = nil,
        communicator: any Communicator = SingleProcessCommunicator(), hostName: String = SageMakerLog.host,
        checkWeightsAcrossRanks: Bool = false
    ) {
        self.communicator = communicator
        self.hostName = hostName
        self.checkWeightsAcrossRanks = checkWeightsAcrossRanks
        self.priorModel = priorModel
        self.allowDownload = allowDownload
        self.checkpointDirectory = checkpointDirectory
        self.resume = resume
        self.configuration = configuration
        self.dataDirectory = dataDirectory
        self.modelDirectory = modelDirectory
        self.pretrainedWeights = pretrainedWeights
        self.cacheDirectory = cacheDirectory
    }

    /// Trains, validates after every epoch, and writes the artifacts.
    /// Returns the epoch summaries.
    @discardableResult
    public func run(events allEvents: (TrainingEvent) throws -> Void = { _ in }) throws -> [EpochSummary] {
        let c = configuration
        try c.validate()  // a configuration built by hand in Swift has not been through the loader
        let (rank, workers) = (communicator.rank, communicator.size)
        let isRoot = communicator.isRoot
        // Every rank calls `events` at the same points; rank 0 alone reports,
        // and when its callback throws, every rank stops there.
        func events(_ event: TrainingEvent) throws { try communicator.onRank0 { try allEvents(event) } }
        let train = try ChannelDataset(dataDirectory: dataDirectory, split: .train)
        let validation = try ChannelDataset(dataDirectory: dataDirectory, split: .validation)
        guard train.count > 0 else { throw TrainingError.emptyChannel("train") }
        guard validation.count > 0 else { throw TrainingError.emptyChannel("validation") }
        if workers > 1 {
            // Every rank must train the same job: the same error on every rank, before any file is written.
            let differing = communicator.ranksDiffering(from: configurationHash(c, train: train, validation: validation))
            guard differing.isEmpty else { throw DataParallelError.configurationMismatch(ranks: differing, workers: workers) }
            guard c.miniBatchSize >= workers else {
                throw DataParallelError.batchTooSmall(miniBatchSize: c.miniBatchSize, workers: workers)
            }
            let (fewest, most) = (c.miniBatchSize / workers, (c.miniBatchSize + workers - 1) / workers)
            try events(.note("data-parallel training on \(workers) workers, \(fewest == most ? "\(most)" : "\(fewest)–\(most)") samples each of every batch of \(c.miniBatchSize), syncbn \(c.syncBN ? "on" : "off")"))
        }
        if train.count != c.numTrainingSamples {
            try events(.note("warning: num_training_samples is \(c.numTrainingSamples) but the train channel holds \(train.count) pairs; the learning-rate schedule follows num_training_samples"))
        }

        // Network, optionally starting from ImageNet weights (the stem follows the file).
        var stem = ResNetStem.deep
        var pretrained: URL?
        var prior: SegmentationModel?
        if let priorModel {
            let model = try ModelDirectory.read(priorModel)
            let p = model.configuration
            let mismatches = [
                ("backbone", p.backbone.rawValue, c.backbone.rawValue), ("algorithm", p.algorithm.rawValue, c.algorithm.rawValue),
                ("num_classes", "\(p.classCount)", "\(c.numClasses)"),
                ("crop_size", model.cropSize.map(String.init) ?? "unknown", "\(c.cropSize)"),
            ].filter { $0.1 != $0.2 }
            if let (key, theirs, ours) = mismatches.first {
                throw ConfigurationError.invalid(
                    key: key, value: ours, expected: "\(theirs), as the prior model \(priorModel.path) was trained with")
            }
            stem = p.stem
            prior = model
        } else if c.usePretrainedModel {
            // Each rank finds its own copy (one may download, another not), so these
            // notes are rank 0's alone and not agreed on: a throw from the callback is dropped.
            let url = try PretrainedBackbone.locate(depth: c.backbone, explicitFile: pretrainedWeights,
                                                    cacheDirectory: cacheDirectory, allowDownload: allowDownload,
                                                    log: { if isRoot { try? allEvents(.note($0)) } })
            stem = try PretrainedBackbone.stem(of: url, requiring: c.backbone)
            pretrained = url
        }
        let networkConfiguration = NetworkConfiguration(algorithm: c.algorithm, backbone: c.backbone, stem: stem,
                                                        classCount: c.numClasses, auxiliaryHead: true)
        // Destructured straight into the var: a second binding of the initial
        // store would keep every weight's first version alive (copy-on-write
        // then copies them all at the first update).
        let network: SegmentationNetwork
        var parameters: ParameterStore
        (network, parameters) = SegmentationNetwork.make(networkConfiguration, seed: c.seed)
        if let prior {
            try parameters.load(prior.parameters.namedTensors, file: priorModel!.path)
            try events(.note("incremental training from \(priorModel!.path)"))
        } else if let pretrained {
            try PretrainedBackbone.load(pretrained, into: &parameters)
            try events(.note("backbone initialized from \(pretrained.path)"))
        }

        // The same starting weights on every rank, whatever each one's files held.
        communicator.broadcast(&parameters)

        try communicator.onRank0 { try FileManager.default.createDirectory(at: modelDirectory, withIntermediateDirectories: true) }
        let loss = SegmentationLoss(auxiliaryWeight: Float(c.auxiliaryWeight))
        var optimizer = Optimizer(configuration: c, parameters: parameters)
        let schedule = LearningRateSchedule(configuration: c)
        var stopper = EarlyStopping(configuration: c)
        var summaries: [EpochSummary] = []
        var bestMeanIoU = -1.0
        var iteration = 0
        var firstEpoch = 0
        if resume, let checkpointDirectory,
            let state = try Checkpoint.resume(from: checkpointDirectory, configuration: c, parameters: &parameters,
                                              optimizer: &optimizer, communicator: communicator)
        {
            summaries = state.metadata.summaries
            bestMeanIoU = state.metadata.bestMeanIoU
            iteration = state.metadata.iteration
            stopper = state.metadata.stopper
            firstEpoch = summaries.count
            try events(.note("resuming from \(state.file) after epoch \(firstEpoch - 1) (iteration \(iteration))"))
        }
        let share = dataParallelShare(of: c.miniBatchSize, rank: rank, workers: workers)
        let loader = TrainingBatchLoader(dataset: train, batchSize: c.miniBatchSize, classCount: c.numClasses,
                                         transform: TrainingTransform(baseSize: c.baseSize, cropSize: c.cropSize), seed: c.seed,
                                         startBatch: iteration, slots: share)
        defer { loader.stop() }
        let workspace = Workspace.training()
        let trainingStep = TrainingStep(network: network, parameters: parameters, loss: loss, communicator: communicator,
                                        syncBatchNorm: c.syncBN, workspace: workspace)
        let iterationsPerEpoch = max(1, train.count / c.miniBatchSize)
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        for epoch in firstEpoch..<c.epochs {
            let epochStart = clock.now
            var lossSum = 0.0
            var learningRate = 0.0
            var communicationSeconds = 0.0
            for step in 0..<iterationsPerEpoch {
                let batch = try loader.next()
                learningRate = schedule(iteration)
                let result = trainingStep.run(batch, firstSample: share.lowerBound, seed: c.seed &+ UInt64(iteration),
                                              parameters: &parameters, optimizer: &optimizer, learningRate: learningRate)
                guard result.loss.isFinite else {
                    throw TrainingError.nonFiniteLoss(epoch: epoch, iteration: step, value: result.loss)
                }
                communicationSeconds += trainingStep.lastCommunicationWaitSeconds
                lossSum += Double(result.loss)
                iteration += 1
                let rate = Double((step + 1) * c.miniBatchSize) / seconds(clock.now - epochStart)
                try communicator.onRank0 {
                    try allEvents(.iteration(epoch: epoch, step: step + 1, steps: iterationsPerEpoch, meanLoss: lossSum / Double(step + 1),
                                             samplesPerSecond: rate))
                    if (step + 1) % c.loggingFrequency == 0 {
                        try allEvents(.progress(SageMakerLog.progress(epoch: epoch, iterations: step + 1, samplesPerSecond: rate,
                                                                  learningRate: learningRate)))
                    }
                }
            }
            let trainSeconds = seconds(clock.now - epochStart)
            if workers > 1 {
                try events(.note(String(format: "epoch %d: %d workers, %.3f s per step, of which %.3f s waiting for the gradient all-reduce after the backward",
                                        epoch, workers, trainSeconds / Double(iterationsPerEpoch), communicationSeconds / Double(iterationsPerEpoch))))
            }
            if checkWeightsAcrossRanks && workers > 1 {
                let differing = communicator.ranksDiffering(from: weightHash(parameters))
                guard differing.isEmpty else { throw DataParallelError.weightsDiverged(ranks: differing, epoch: epoch) }
                try events(.note("epoch \(epoch): the weights are identical on all \(workers) ranks"))
            }

            // Validation over the whole set, split over the workers.
            let model = SegmentationModel(network: network, parameters: parameters, cropSize: c.cropSize)
            var matrix = try Predictor(model: model, lending: workspace)
                .evaluate(validation, batchSize: c.validationMiniBatchSize, cropSize: c.cropSize,
                          indices: dataParallelShare(of: validation.count, rank: rank, workers: workers))
            if workers > 1 { matrix.sumOverWorkers(communicator) }
            let summary = EpochSummary(
                epoch: epoch, trainLoss: lossSum / Double(iterationsPerEpoch),
                validationPixelAccuracy: matrix.pixelAccuracy, validationMeanIoU: matrix.meanIoU,
                validationMeanIoUPresent: matrix.meanIoUOfPresentClasses, validationClassIoU: matrix.classIoU,
                throughput: Double(iterationsPerEpoch * c.miniBatchSize) / trainSeconds, learningRate: learningRate,
                seconds: seconds(clock.now - epochStart))
            summaries.append(summary)

            // Artifacts, each written atomically, by rank 0 alone.
            let stop = c.earlyStopping && stopper.record(meanIoU: summary.validationMeanIoU)
            let improved = summary.validationMeanIoU > bestMeanIoU
            if improved { bestMeanIoU = summary.validationMeanIoU }
            try communicator.onRank0 {
                try writeArtifacts(model: model, parameters: parameters, optimizer: optimizer, summaries: summaries,
                                   improved: improved, bestMeanIoU: bestMeanIoU, iteration: iteration, stopper: stopper)
                try allEvents(.epoch(summary, lines: SageMakerLog.epochLines(summary, host: hostName)))
            }
            if stop {
                try events(.note("early stopping after epoch \(epoch): validation mIOU has not improved for \(stopper.stalledEpochs) epochs (best \(String(format: "%.4f", stopper.best)))"))
                break
            }
        }
        try communicator.onRank0 { try ModelDirectory.archive(modelDirectory) }
        return summaries
    }

    /// The model directory's files after an epoch, and the checkpoint.
    private func writeArtifacts(model: SegmentationModel, parameters: ParameterStore, optimizer: Optimizer,
                                summaries: [EpochSummary], improved: Bool, bestMeanIoU: Double, iteration: Int,
                                stopper: EarlyStopping) throws {
        let c = configuration, epoch = summaries.last!.epoch
        if improved {
            try ModelDirectory.write(model, to: modelDirectory, hyperparameters: c.hyperparameters,
                                     origin: "trained by segment train (best epoch \(epoch))")
        }
        try SafeTensorsFile(tensors: parameters.namedTensors, metadata: ["epoch": "\(epoch)"])
            .write(to: modelDirectory.appendingPathComponent(ModelDirectory.lastWeightsFile))
        try writeAtomically(Data(summaries.map { $0.jsonLine + "\n" }.joined().utf8),
                            to: modelDirectory.appendingPathComponent("metrics.jsonl"))
        try writeAtomically(Data(TrainingCurves.png(loss: summaries.map(\.trainLoss),
                                                    meanIoU: summaries.map(\.validationMeanIoU),
                                                    pixelAccuracy: summaries.map(\.validationPixelAccuracy))),
                            to: modelDirectory.appendingPathComponent("training-curves.png"))
        if let checkpointDirectory {
            try Checkpoint(parameters: parameters, optimizer: optimizer, summaries: summaries, bestMeanIoU: bestMeanIoU,
                           iteration: iteration, stopper: stopper)
                .write(to: checkpointDirectory, configuration: c)
        }
    }
}
