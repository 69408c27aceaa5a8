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

    /// The hyperparameters file's configuration (notes for the log beside it).
    public func configuration() throws -> (TrainingConfiguration, notes: [String]) {
        let data: Data
        do {
            data = try Data(contentsOf: hyperparametersFile)
        } catch {
            throw ConfigurationError.malformedFile(hyperparametersFile.path, reason: "cannot read it: \(error.localizedDescription)")
        }
        return try TrainingConfiguration.parse(json: data, file: hyperparametersFile.path)
    }

    /// Records why training failed, where SageMaker shows it to the user.
    public func writeFailure(_ reason: String) {
        try? FileManager.default.createDirectory(at: failureFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? writeAtomically(Data((reason + "\n").utf8), to: failureFile)
    }
}
