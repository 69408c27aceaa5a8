/// RGB normalization applied to images before the network (SPEC §3):
/// x = (RGB/255 − mean) / std per channel.
public struct Normalization: Sendable, Codable, Hashable {
    public var mean: [Float]
    public var std: [Float]

    /// ImageNet statistics, as GluonCV and torchvision use.
    public static let imageNet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
}

/// A trained (or imported) network: architecture, weights and what a
/// predictor needs to prepare its input.
public struct SegmentationModel: Sendable {
    public var network: SegmentationNetwork
    public var parameters: ParameterStore
    public var normalization: Normalization
    /// Training crop side (for incremental training checks); nil when unknown (imported models).
    public var cropSize: Int?

    public var configuration: NetworkConfiguration { network.configuration }

    public init(network: SegmentationNetwork, parameters: ParameterStore, normalization: Normalization = .imageNet, cropSize: Int? = nil) {
        self.network = network
        self.parameters = parameters
        self.normalization = normalization
        self.cropSize = cropSize
    }
}

extension NetworkConfiguration {
    /// The architecture a set of tensors (our names) was saved from: algorithm
    /// from the head's tensors, depth from layer3's block count, stem from
    /// `conv1`, classes from the classifier, aux from `aux_head.*`.
    public static func infer(from tensors: [String: Tensor], file: String) throws -> NetworkConfiguration {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        let algorithm: SegmentationAlgorithm
        if tensors.keys.contains(where: { $0.hasPrefix("head.psp.") }) {
            algorithm = .psp
        } else if tensors.keys.contains(where: { $0.hasPrefix("head.aspp.") }) {
            algorithm = .deeplab
        } else if tensors["head.block.0.weight"] != nil {
            algorithm = .fcn
        } else {
            throw fail("no segmentation head (head.* / classifier.*) found: is this a backbone-only file?")
        }
        let layer3Blocks = Set(tensors.keys.compactMap { key -> Int? in
            guard key.hasPrefix("backbone.layer3.") else { return nil }
            return Int(key.split(separator: ".")[2])
        }).count
        let backbone: ResNetDepth
        switch layer3Blocks {
        case 6: backbone = .resnet50
        case 23: backbone = .resnet101
        default: throw fail("backbone layer3 has \(layer3Blocks) blocks; expected 6 (ResNet-50) or 23 (ResNet-101)")
        }
        let stem: ResNetStem
        if tensors["backbone.conv1.0.weight"] != nil {
            stem = .deep
        } else if tensors["backbone.conv1.weight"] != nil {
            stem = .standard
        } else {
            throw fail("no stem convolution (backbone.conv1.weight or backbone.conv1.0.weight)")
        }
        guard let classifier = tensors["head.block.4.weight"], classifier.shape.rank == 4 else {
            throw WeightFileError.missingTensor(file: file, key: "head.block.4.weight")
        }
        return NetworkConfiguration(
            algorithm: algorithm, backbone: backbone, stem: stem, classCount: classifier.shape[0],
            auxiliaryHead: tensors.keys.contains { $0.hasPrefix("aux_head.") })
    }
}
