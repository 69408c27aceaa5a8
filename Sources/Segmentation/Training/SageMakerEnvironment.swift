import Foundation

/// The paths of SageMaker's training container contract, under a root
/// (`/` in a real container; a scratch directory in tests):
///
///     opt/ml/input/config/hyperparameters.json   the hyperparameters (string values)
///     opt/ml/input/config/resourceconfig.json    this host's name and all hosts' (multi-instance jobs)
///     opt/ml/input/data/<channel>/               train, train_annotation, validation, validation_annotation, label_map
///     opt/ml/model/                              the artifacts SageMaker uploads
///     opt/ml/checkpoints/                        per-epoch checkpoints (SageMaker syncs them to S3)
///     opt/ml/output/failure                      the reason, when training fails
public struct SageMakerEnvironment: Sendable {
    public var root: URL

    public init(root: URL = URL(fileURLWithPath: "/")) {
        self.root = root
    }

    var ml: URL { root.appendingPathComponent("opt/ml") }
    public var hyperparametersFile: URL { ml.appendingPathComponent("input/config/hyperparameters.json") }
    public var resourceConfigFile: URL { ml.appendingPathComponent("input/config/resourceconfig.json") }
    public var dataDirectory: URL { ml.appendingPathComponent("input/data") }
    public var modelDirectory: URL { ml.appendingPathComponent("model") }
    public var checkpointDirectory: URL { ml.appendingPathComponent("checkpoints") }
    public var failureFile: URL { ml.appendingPathComponent("output/failure") }

    /// The hyperparameters file's configuration with `overrides` (`--set
    /// key=value`) on top, and notes for the log beside it.
    public func configuration(overrides: [String] = []) throws -> (TrainingConfiguration, notes: [String]) {
        try TrainingConfiguration.load(file: hyperparametersFile, overrides: overrides)
    }

    /// SageMaker's description of the job's instances (`current_host`, `hosts`).
    public struct ResourceConfiguration: Codable, Sendable, Equatable {
        public var currentHost: String
        public var hosts: [String]

        enum CodingKeys: String, CodingKey {
            case currentHost = "current_host"
            case hosts
        }
    }

    /// resourceconfig.json, or nil when the container has none (a single local run).
    public func resourceConfiguration() throws -> ResourceConfiguration? {
        guard FileManager.default.fileExists(atPath: resourceConfigFile.path) else { return nil }
        do {
            return try JSONDecoder().decode(ResourceConfiguration.self, from: Data(contentsOf: resourceConfigFile))
        } catch {
            throw ConfigurationError.malformedFile(resourceConfigFile.path, reason: "expected {\"current_host\": …, \"hosts\": […]}: \(error)")
        }
    }

    /// Records why training failed, where SageMaker shows it to the user.
    public func writeFailure(_ reason: String) {
        try? FileManager.default.createDirectory(at: failureFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? writeAtomically(Data((reason + "\n").utf8), to: failureFile)
    }
}
