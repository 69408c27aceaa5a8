/// The decoder on top of the backbone (SageMaker's `algorithm`).
public enum SegmentationAlgorithm: String, Sendable, Codable, CaseIterable {
    case fcn, psp, deeplab
}

/// Everything that fixes a network's architecture (and so its parameter names and shapes).
public struct NetworkConfiguration: Sendable, Codable, Hashable {
    public var algorithm: SegmentationAlgorithm
    public var backbone: ResNetDepth
    public var stem: ResNetStem
    public var classCount: Int
    /// The FCN-shaped aux head on c3, used for the training loss.
    public var auxiliaryHead: Bool

    public init(
        algorithm: SegmentationAlgorithm = .fcn, backbone: ResNetDepth = .resnet50, stem: ResNetStem = .deep,
        classCount: Int, auxiliaryHead: Bool = true
    ) {
        self.algorithm = algorithm
        self.backbone = backbone
        self.stem = stem
        self.classCount = classCount
        self.auxiliaryHead = auxiliaryHead
    }

    enum CodingKeys: String, CodingKey {
        case algorithm, backbone, stem
        case classCount = "num_classes"
        case auxiliaryHead = "aux"
    }
}

extension NetworkConfiguration {
    /// Class counts a model may have: at least two, and ids that fit an
    /// 8-bit mask beside the ignore label 255.
    public static let validClassCounts = 2...255

    /// A configuration no network can be built from.
    public struct InvalidConfiguration: Error, CustomStringConvertible, Equatable {
        /// The model.json key, e.g. `num_classes`.
        public var key: String
        public var value: String
        public var expected: String

        public var description: String { "\(key) = \(value): expected \(expected)" }
    }

    /// Throws when a network cannot be built or its masks cannot be written.
    public func validate() throws {
        guard Self.validClassCounts.contains(classCount) else {
            throw InvalidConfiguration(
                key: CodingKeys.classCount.rawValue, value: "\(classCount)",
                expected: "an integer from \(Self.validClassCounts.lowerBound) to \(Self.validClassCounts.upperBound) (class ids are written as 8-bit mask values)")
        }
    }
}
