import Foundation

/// Turns a full segmentation checkpoint from torchvision (FCN, DeepLabV3) or
/// GluonCV (FCN, PSP, DeepLab) into a `SegmentationModel`.
public enum ModelImporter {
    /// What the user said the file holds; each non-nil field is checked
    /// against the file.
    public struct Expectation: Sendable {
        public var algorithm: SegmentationAlgorithm?
        public var backbone: ResNetDepth?
        public var classCount: Int?
        public init(algorithm: SegmentationAlgorithm? = nil, backbone: ResNetDepth? = nil, classCount: Int? = nil) {
            self.algorithm = algorithm
            self.backbone = backbone
            self.classCount = classCount
        }
    }

    public enum ImportError: Error, CustomStringConvertible, Equatable {
        case mismatch(file: String, option: String, expected: String, found: String)

        public var description: String {
            switch self {
            case let .mismatch(file, option, expected, found):
                return "\(file): \(option) \(expected) was given, but the file holds \(found)"
            }
        }
    }

    public static func importModel(
        from url: URL, expecting expectation: Expectation = Expectation()
    ) throws -> (model: SegmentationModel, source: WeightSource, format: WeightFile.Format) {
        let contents = try WeightFile.read(contentsOf: url)
        let configuration = try NetworkConfiguration.infer(from: contents.tensors, file: url.path)
        do {
            try configuration.validate()
        } catch let error as NetworkConfiguration.InvalidConfiguration {
            throw WeightFileError.malformed(file: url.path, reason: "the classifier gives \(error)")
        }
        if let algorithm = expectation.algorithm, algorithm != configuration.algorithm {
            throw ImportError.mismatch(file: url.path, option: "--algorithm", expected: algorithm.rawValue,
                                       found: "a \(configuration.algorithm.rawValue) head")
        }
        if let backbone = expectation.backbone, backbone != configuration.backbone {
            throw ImportError.mismatch(file: url.path, option: "--backbone", expected: backbone.rawValue,
                                       found: "a \(configuration.backbone.rawValue) backbone")
        }
        if let classes = expectation.classCount, classes != configuration.classCount {
            throw ImportError.mismatch(file: url.path, option: "--num-classes", expected: "\(classes)",
                                       found: "a \(configuration.classCount)-class classifier")
        }
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        let network = SegmentationNetwork(configuration: configuration, builder: &builder)
        var parameters = builder.store
        try parameters.load(contents.tensors, file: url.path)
        return (SegmentationModel(network: network, parameters: parameters), contents.source, contents.format)
    }
}

extension SegmentationModel {
    /// A few lines for people: architecture, parameter counts per part, normalization.
    public var summary: String {
        let c = configuration
        var lines = [
            "algorithm: \(c.algorithm.rawValue)   backbone: \(c.backbone.rawValue) (\(c.stem) stem, output stride 8)   classes: \(c.classCount)   aux head: \(c.auxiliaryHead ? "yes" : "no")",
            "parameters: \(grouped(parameters.trainableParameterCount)) trainable + \(grouped(parameters.totalScalarCount - parameters.trainableParameterCount)) BN running statistics",
        ]
        for part in ["backbone", "head", "aux_head"] {
            let count = parameters.ids.filter { parameters.name(of: $0).hasPrefix(part + ".") && parameters.role(of: $0) == .trainable }
                .reduce(0) { $0 + parameters[$1].elementCount }
            if count > 0 { lines.append("  \(part.padding(toLength: 9, withPad: " ", startingAt: 0)) \(grouped(count))") }
        }
        lines.append("input: RGB/255, mean \(normalization.mean), std \(normalization.std)" + (cropSize.map { ", trained at crop \($0)" } ?? ""))
        return lines.joined(separator: "\n")
    }
}

/// 35445994 → "35,445,994"
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return value < 0 ? "-" + result : result
}
