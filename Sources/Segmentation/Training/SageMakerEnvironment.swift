import Foundation

/// The paths of SageMaker's training container contract, under a root
/// (`/` in a real container; a scratch directory in tests):
///
///     opt/ml/input/config/hyperparameters.json   the hyperparameters (string values)
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
    public var dataDirectory: URL { ml.appendingPathComponent("input/data") }
    public var modelDirectory: URL { ml.appendingPathComponent("model") }
    public var checkpointDirectory: URL { ml.appendingPathComponent("checkpoints") }
    public var failureFile: URL { ml.appendingPathComponent("output/failure") }

    /// The hyperparameters file's configuration with `overrides` (`--set
    /// key=value`) on top, and notes for the log beside it.
    public func configuration(overrides: [String] = []) throws -> (TrainingConfiguration, notes: [String]) {
        try TrainingConfiguration.load(file: hyperparametersFile, overrides: overrides)
    }

    /// Records why training failed, where SageMaker shows it to the user.
    public func writeFailure(_ reason: String) {
        try? FileManager.default.createDirectory(at: failureFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? writeAtomically(Data((reason + "\n").utf8), to: failureFile)
    }
}
