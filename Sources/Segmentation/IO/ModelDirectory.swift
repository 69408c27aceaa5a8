import Foundation

/// The model directory (SPEC §6):
///
///     model.json               ModelDescription: format version, architecture, normalization, crop size
///     hyperparams.json         the hyperparameters (SageMaker style: every value a string)
///     model_best.safetensors   weights of the best validation epoch (or the imported weights)
///     model_last.safetensors   weights after the last epoch (training only)
///
/// Every file is written atomically.
public enum ModelDirectory {
    public static let descriptionFile = "model.json"
    public static let hyperparametersFile = "hyperparams.json"
    public static let bestWeightsFile = "model_best.safetensors"
    public static let lastWeightsFile = "model_last.safetensors"

    /// model.json.
    public struct ModelDescription: Codable, Sendable, Equatable {
        /// Bumped on any incompatible change of the directory layout or names.
        public static let currentFormatVersion = 1

        public var formatVersion: Int
        public var network: NetworkConfiguration
        public var normalization: Normalization
        public var cropSize: Int?
        /// Where the weights came from, for people ("imported from …", "trained by segment train").
        public var origin: String

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", network, normalization
            case cropSize = "crop_size", origin
        }
    }

    /// Writes model.json, hyperparams.json and model_best.safetensors into `directory` (created if needed).
    public static func write(
        _ model: SegmentationModel, to directory: URL, hyperparameters: [String: String], origin: String
    ) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let description = ModelDescription(
            formatVersion: ModelDescription.currentFormatVersion, network: model.configuration,
            normalization: model.normalization, cropSize: model.cropSize, origin: origin)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(description), to: directory.appendingPathComponent(descriptionFile))
        try writeAtomically(encoder.encode(hyperparameters), to: directory.appendingPathComponent(hyperparametersFile))
        try SafeTensorsFile(tensors: model.parameters.namedTensors, metadata: ["format": "pt", "origin": origin])
            .write(to: directory.appendingPathComponent(bestWeightsFile))
    }

    /// Reads a model directory (weights: model_best, else model_last).
    public static func read(_ directory: URL) throws -> SegmentationModel {
        let descriptionURL = directory.appendingPathComponent(descriptionFile)
        guard FileManager.default.fileExists(atPath: descriptionURL.path) else {
            throw WeightFileError.unreadable(
                file: descriptionURL.path, reason: "no model.json: is \(directory.path) a model directory written by segment train or segment import?")
        }
        let description: ModelDescription
        do {
            description = try JSONDecoder().decode(ModelDescription.self, from: Data(contentsOf: descriptionURL))
        } catch {
            throw WeightFileError.malformed(file: descriptionURL.path, reason: "\(error)")
        }
        guard description.formatVersion <= ModelDescription.currentFormatVersion else {
            throw WeightFileError.malformed(
                file: descriptionURL.path,
                reason: "format_version \(description.formatVersion) is newer than this tool understands (\(ModelDescription.currentFormatVersion)); upgrade segment")
        }
        var weightsURL = directory.appendingPathComponent(bestWeightsFile)
        if !FileManager.default.fileExists(atPath: weightsURL.path) {
            weightsURL = directory.appendingPathComponent(lastWeightsFile)
        }
        let weights = try SafeTensorsFile(contentsOf: weightsURL)
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        let network = SegmentationNetwork(configuration: description.network, builder: &builder)
        var parameters = builder.store
        try parameters.load(weights.tensors, file: weightsURL.path)
        return SegmentationModel(network: network, parameters: parameters, normalization: description.normalization,
                                 cropSize: description.cropSize)
    }
}
