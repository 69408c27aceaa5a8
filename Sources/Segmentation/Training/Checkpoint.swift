import Foundation

/// Everything a killed run needs to continue exactly where it stopped,
/// written after every epoch as one safetensors file (atomically):
///
///     parameters/<name>     weights and BN running statistics
///     optimizer.1/<name>    optimizer state (momentum, moments, …; see Optimizer)
///     optimizer.2/<name>
///     optimizer.3/<name>
///     __metadata__ "state"  JSON: iteration, optimizer step, best mIOU,
///                           early-stopping state, epoch summaries, hyperparameters
///
/// The batch stream is a pure function of (seed, batch index), so with these
/// the resumed run computes bit for bit what the uninterrupted run would have.
struct Checkpoint {
    static let fileName = "checkpoint.safetensors"

    var parameters: ParameterStore
    var optimizer: Optimizer
    var summaries: [EpochSummary]
    var bestMeanIoU: Double
    var iteration: Int
    var stopper: EarlyStopping

    struct Metadata: Codable {
        var iteration: Int
        var optimizerStep: Int
        var bestMeanIoU: Double
        var stopper: EarlyStopping
        var summaries: [EpochSummary]
        var hyperparameters: [String: String]
    }

    /// What `read` returns: the saved scalars (`metadata`) and tensors.
    struct State {
        var file: String
        var metadata: Metadata
        var parameters: [String: Tensor]
        var optimizerFirst: ParameterStore
        var optimizerSecond: ParameterStore
        var optimizerThird: ParameterStore
    }

    func write(to directory: URL, configuration: TrainingConfiguration) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in parameters.namedTensors { tensors["parameters/" + name] = tensor }
        for (slot, store) in [(1, optimizer.firstState), (2, optimizer.secondState), (3, optimizer.thirdState)] {
            for (name, tensor) in store.namedTensors { tensors["optimizer.\(slot)/" + name] = tensor }
        }
        let metadata = Metadata(iteration: iteration, optimizerStep: optimizer.step, bestMeanIoU: bestMeanIoU,
                                stopper: stopper, summaries: summaries, hyperparameters: configuration.hyperparameters)
        let json = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
        try SafeTensorsFile(tensors: tensors, metadata: ["state": json]).write(to: directory.appendingPathComponent(Self.fileName))
    }

    /// The saved state, or nil when the directory holds no checkpoint. The
    /// optimizer state is laid out like `optimizer`'s; the hyperparameters must
    /// equal `configuration`'s.
    static func read(from directory: URL, configuration: TrainingConfiguration, optimizer: Optimizer) throws -> State? {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let file = try SafeTensorsFile(contentsOf: url)
        guard let json = file.metadata["state"],
            let metadata = try? JSONDecoder().decode(Metadata.self, from: Data(json.utf8))
        else { throw WeightFileError.malformed(file: url.path, reason: "no training state in the checkpoint's metadata") }
        let current = configuration.hyperparameters
        for key in Set(current.keys).union(metadata.hyperparameters.keys).sorted() where current[key] != metadata.hyperparameters[key] {
            throw ConfigurationError.invalid(
                key: key, value: current[key] ?? "(unset)",
                expected: "\(metadata.hyperparameters[key] ?? "(unset)") as in the checkpoint \(url.path); resume with the same hyperparameters or start a new run")
        }
        func section(_ prefix: String) -> [String: Tensor] {
            var result: [String: Tensor] = [:]
            for (key, tensor) in file.tensors where key.hasPrefix(prefix) { result[String(key.dropFirst(prefix.count))] = tensor }
            return result
        }
        var first = optimizer.firstState, second = optimizer.secondState, third = optimizer.thirdState
        try first.load(section("optimizer.1/"), file: url.path)
        try second.load(section("optimizer.2/"), file: url.path)
        try third.load(section("optimizer.3/"), file: url.path)
        return State(file: url.path, metadata: metadata, parameters: section("parameters/"),
                     optimizerFirst: first, optimizerSecond: second, optimizerThird: third)
    }
}

extension Checkpoint {
    /// What rank 0 tells the others about the checkpoint it read.
    private struct ResumeMessage: Codable {
        var file: String?
        var metadata: Metadata?
        var error: String?
    }

    /// Resumes every rank of a job (any number, SPEC §10): rank 0 reads the
    /// checkpoint (the other ranks' machines need not hold it), loads it into
    /// `parameters` and `optimizer`, and sends the state to the others.
    /// Returns the saved scalars, or nil on every rank when there is no checkpoint.
    static func resume(from directory: URL, configuration: TrainingConfiguration, parameters: inout ParameterStore,
                       optimizer: inout Optimizer, communicator: any Communicator)
        throws -> (file: String, metadata: Metadata)?
    {
        var message: [UInt8] = []
        var failure: Error?
        if communicator.isRoot {
            var outcome = ResumeMessage()
            do {
                if let state = try read(from: directory, configuration: configuration, optimizer: optimizer) {
                    try parameters.load(state.parameters, file: state.file)
                    optimizer.restore(step: state.metadata.optimizerStep, first: state.optimizerFirst,
                                      second: state.optimizerSecond, third: state.optimizerThird)
                    (outcome.file, outcome.metadata) = (state.file, state.metadata)
                }
            } catch {
                failure = error
                outcome.error = "rank 0 could not resume: \(error)"
            }
            message = Array(try JSONEncoder().encode(outcome))
        }
        communicator.broadcast(&message)
        if let failure { throw failure }
        let outcome = try JSONDecoder().decode(ResumeMessage.self, from: Data(message))
        if let error = outcome.error { throw DataParallelError.resumeFailed(error) }
        guard let file = outcome.file, let metadata = outcome.metadata else { return nil }
        if communicator.size > 1 {
            communicator.broadcast(&parameters)
            var first = optimizer.firstState, second = optimizer.secondState, third = optimizer.thirdState
            communicator.broadcast(&first)
            communicator.broadcast(&second)
            communicator.broadcast(&third)
            optimizer.restore(step: metadata.optimizerStep, first: first, second: second, third: third)
        }
        return (file, metadata)
    }
}
