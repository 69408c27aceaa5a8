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

        /// Throws, naming the key, what no network or predictor can use.
        func validate() throws {
            guard formatVersion >= 1 else {
                throw NetworkConfiguration.InvalidConfiguration(key: "format_version", value: "\(formatVersion)", expected: "1 or more")
            }
            do {
                try network.validate()
            } catch var error as NetworkConfiguration.InvalidConfiguration {
                error.key = "network." + error.key
                throw error
            }
            for (key, values) in [("mean", normalization.mean), ("std", normalization.std)] {
                guard values.count == 3, values.allSatisfy(\.isFinite) else {
                    throw NetworkConfiguration.InvalidConfiguration(
                        key: "normalization.\(key)", value: "\(values)", expected: "three finite numbers (R, G, B)")
                }
            }
            guard normalization.std.allSatisfy({ $0 > 0 }) else {
                throw NetworkConfiguration.InvalidConfiguration(
                    key: "normalization.std", value: "\(normalization.std)", expected: "three numbers above 0 (pixels are divided by them)")
            }
            if let cropSize, cropSize < 1 {
                throw NetworkConfiguration.InvalidConfiguration(key: "crop_size", value: "\(cropSize)", expected: "a positive integer")
            }
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

    /// The archive SageMaker ships: model.tar.gz holding model.json,
    /// hyperparams.json and the weights present in `directory`.
    public static let archiveFile = "model.tar.gz"

    /// Writes `directory/model.tar.gz` (atomically) from the files in `directory`.
    public static func archive(_ directory: URL) throws {
        let names = [descriptionFile, hyperparametersFile, bestWeightsFile, lastWeightsFile].filter {
            FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path)
        }
        try writeTarGz(names.map { ($0, directory.appendingPathComponent($0)) },
                       to: directory.appendingPathComponent(archiveFile))
    }

    /// Reads a model directory or a model.tar.gz (weights: model_best, else model_last).
    public static func read(_ location: URL) throws -> SegmentationModel {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: location.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return try readArchive(location)
        }
        return try readDirectory(location)
    }

    static func readArchive(_ url: URL) throws -> SegmentationModel {
        let data = try WeightFileError.contents(of: url)
        var entries: [String: Data] = [:]
        for (path, contents) in try readTarGzEntries(data, file: url.path) {
            entries[URL(fileURLWithPath: path).lastPathComponent] = contents
        }
        guard let descriptionData = entries[descriptionFile] else {
            throw WeightFileError.malformed(file: url.path, reason: "the archive holds no model.json: not a model archive written by segment")
        }
        let description = try decodeDescription(descriptionData, file: "\(url.path):model.json")
        guard let weightsData = entries[bestWeightsFile] ?? entries[lastWeightsFile] else {
            throw WeightFileError.malformed(file: url.path, reason: "the archive holds no model_best.safetensors or model_last.safetensors")
        }
        let weights = try SafeTensorsFile(data: weightsData, file: "\(url.path):weights")
        return try assemble(description, weights: weights, file: url.path)
    }

    /// Decodes and checks model.json: every key a network, a normalization
    /// and a predictor need, each error naming `file` and the key.
    public static func decodeDescription(_ data: Data, file: String) throws -> ModelDescription {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        guard !data.isEmpty else { throw fail("the file is empty; a model directory's model.json describes the network") }
        guard let object = try? JSONSerialization.jsonObject(with: data) else { throw fail("not valid JSON") }
        guard let dictionary = object as? [String: Any] else { throw fail("expected a JSON object, found \(type(of: object))") }
        // The version first: a newer file should say "upgrade", not name a key it moved.
        if let version = dictionary[ModelDescription.CodingKeys.formatVersion.rawValue] as? Int,
           version > ModelDescription.currentFormatVersion
        {
            throw fail("format_version \(version) is newer than this tool understands "
                       + "(\(ModelDescription.currentFormatVersion)); upgrade segment")
        }
        let description: ModelDescription
        do {
            description = try JSONDecoder().decode(ModelDescription.self, from: data)
        } catch let error as DecodingError {
            throw fail(Self.explain(error))
        }
        do {
            try description.validate()
        } catch let error as NetworkConfiguration.InvalidConfiguration {
            throw fail("key '\(error.key)' = \(error.value): expected \(error.expected)")
        }
        return description
    }

    /// A decoding error as "key 'network.algorithm': …" for people.
    static func explain(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
        let choices: [String: [String]] = [
            "algorithm": SegmentationAlgorithm.allCases.map(\.rawValue), "backbone": ResNetDepth.allCases.map(\.rawValue),
            "stem": ResNetStem.allCases.map(\.rawValue),
        ]
        switch error {
        case let .keyNotFound(key, context):
            return "missing key '\(path(context.codingPath + [key]))'"
        case let .typeMismatch(type, context):
            return "key '\(path(context.codingPath))': expected \(type == Int.self ? "an integer" : "a value of type \(type)")"
        case let .valueNotFound(_, context):
            return "key '\(path(context.codingPath))' is null"
        case let .dataCorrupted(context):
            if let last = context.codingPath.last?.stringValue, let valid = choices[last] {
                return "key '\(path(context.codingPath))': expected one of \(valid.joined(separator: ", "))"
            }
            return "key '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func assemble(_ description: ModelDescription, weights: SafeTensorsFile, file: String) throws -> SegmentationModel {
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        let network = SegmentationNetwork(configuration: description.network, builder: &builder)
        var parameters = builder.store
        try parameters.load(weights.tensors, file: file)
        return SegmentationModel(network: network, parameters: parameters, normalization: description.normalization,
                                 cropSize: description.cropSize)
    }

    static func readDirectory(_ directory: URL) throws -> SegmentationModel {
        let descriptionURL = directory.appendingPathComponent(descriptionFile)
        guard FileManager.default.fileExists(atPath: descriptionURL.path) else {
            throw WeightFileError.unreadable(
                file: descriptionURL.path, reason: "no model.json: is \(directory.path) a model directory written by segment train or segment import?")
        }
        let description = try decodeDescription(try WeightFileError.contents(of: descriptionURL), file: descriptionURL.path)
        var weightsURL = directory.appendingPathComponent(bestWeightsFile)
        if !FileManager.default.fileExists(atPath: weightsURL.path) {
            weightsURL = directory.appendingPathComponent(lastWeightsFile)
        }
        let weights = try SafeTensorsFile(contentsOf: weightsURL)
        return try assemble(description, weights: weights, file: weightsURL.path)
    }
}
