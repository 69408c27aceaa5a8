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
