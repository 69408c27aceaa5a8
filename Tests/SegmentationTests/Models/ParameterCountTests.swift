import Segmentation
import Testing

/// Trainable parameter counts (21 classes, aux head) against the reference
/// implementations, printed by Fixtures/generate_gluoncv_fixtures.py and
/// generate_torchvision_fixtures.py (also stored in their fixture metadata):
/// GluonCV 0.10/0.11 `FCN`, `PSPNet`, `DeepLabV3` with `resnet*_v1s` (deep stem),
/// torchvision `fcn_resnet*` and `deeplabv3_resnet*` (standard stem).
@Suite("Parameter counts")
struct ParameterCountTests {
    struct Reference: Sendable, CustomTestStringConvertible {
        var algorithm: SegmentationAlgorithm
        var backbone: ResNetDepth
        var stem: ResNetStem
        var trainable: Int
        var buffers: Int
        var testDescription: String { "\(algorithm) \(backbone.rawValue) \(stem)" }
    }

    static let references: [Reference] = [
        // GluonCV, deep stem: trainable, and running mean + variance scalars
        .init(algorithm: .fcn, backbone: .resnet50, stem: .deep, trainable: 35_445_994, buffers: 35_501_034 - 35_445_994),
        .init(algorithm: .fcn, backbone: .resnet101, stem: .deep, trainable: 54_438_122, buffers: 54_545_386 - 54_438_122),
        .init(algorithm: .psp, backbone: .resnet50, stem: .deep, trainable: 49_081_578, buffers: 49_140_714 - 49_081_578),
        .init(algorithm: .psp, backbone: .resnet101, stem: .deep, trainable: 68_073_706, buffers: 68_185_066 - 68_073_706),
        .init(algorithm: .deeplab, backbone: .resnet50, stem: .deep, trainable: 42_127_850, buffers: 42_185_450 - 42_127_850),
        .init(algorithm: .deeplab, backbone: .resnet101, stem: .deep, trainable: 61_119_978, buffers: 61_229_802 - 61_119_978),
        // torchvision, standard stem (running statistics without num_batches_tracked)
        .init(algorithm: .fcn, backbone: .resnet50, stem: .standard, trainable: 35_322_218, buffers: 54_656),
        .init(algorithm: .fcn, backbone: .resnet101, stem: .standard, trainable: 54_314_346, buffers: 106_880),
        .init(algorithm: .deeplab, backbone: .resnet50, stem: .standard, trainable: 42_004_074, buffers: 57_216),
        .init(algorithm: .deeplab, backbone: .resnet101, stem: .standard, trainable: 60_996_202, buffers: 109_440),
    ]

    @Test(arguments: references)
    func matchesReference(_ reference: Reference) {
        let (_, parameters) = SegmentationNetwork.make(
            NetworkConfiguration(algorithm: reference.algorithm, backbone: reference.backbone, stem: reference.stem,
                                 classCount: 21, auxiliaryHead: true))
        #expect(parameters.trainableParameterCount == reference.trainable)
        #expect(parameters.totalScalarCount - parameters.trainableParameterCount == reference.buffers)
    }
}
