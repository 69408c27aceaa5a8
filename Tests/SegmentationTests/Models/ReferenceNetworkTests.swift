import Foundation
import Segmentation
import SegmentationTestSupport
import Testing

/// Whole networks against the reference implementations on one 72×56 image,
/// inference mode, all weights from the closed-form fill (NetworkFill) mapped
/// through each framework's names (Fixtures/generate_*_fixtures.py).
///
/// Tolerance: max |ours − reference| ≤ 1e-4 · max |reference logit|, the
/// issue's bar. Both sides run ~60 Float32 layers with different summation
/// orders; a wrong dilation, padding, bin, resize or concat order moves logits
/// by O(max|logit|).
@Suite("Reference networks", .serialized)
struct ReferenceNetworkTests {
    static func run(
        _ configuration: NetworkConfiguration, fixture: SafeTensorsFile, key: String
    ) throws -> (logits: Tensor, auxiliary: Tensor?) {
        let (network, initial) = SegmentationNetwork.make(configuration)
        var parameters = initial
        NetworkFill.fill(&parameters)
        let expectedNames = try #require(fixture.metadata[key]).split(separator: ",").map(String.init)
        #expect(expectedNames == parameters.names.sorted(), "parameter names differ from the reference's, mapped")
        let image = try #require(fixture.tensors["input"])
        let context = ForwardContext(mode: .inference)
        let (output, cache) = network.forward(image, parameters: parameters, context: context)
        #expect(cache == nil, "an inference forward kept activations for a backward")
        // The aux head is skipped in inference; run it on c3 to compare it too.
        let features = network.backbone.forward(image, parameters: parameters, context: context).0
        let c3 = try #require(features.c3, "the backbone dropped c3 though asked to keep it")
        #expect(network.backbone.forward(image, parameters: parameters, context: context, keepingC3: false).0.c3 == nil,
                "the backbone kept c3 though not asked to")
        let aux = network.auxiliaryHead.map {
            bilinearResize($0.forward(c3, parameters: parameters, context: context).0,
                           height: image.shape.height, width: image.shape.width)
        }
        return (output.logits, aux)
    }

    static func expectParity(_ actual: Tensor, _ expected: Tensor?, _ what: String) throws {
        let expected = try #require(expected, "fixture lacks \(what)")
        let scale = maximumMagnitude(expected)
        #expect(scale > 1e-3, "\(what): reference logits are all ~0, the comparison would be vacuous")
        expectClose(actual, expected, absoluteTolerance: 1e-4 * scale, what)
    }

    @Test(arguments: [SegmentationAlgorithm.fcn, .psp, .deeplab])
    func gluonCV(_ algorithm: SegmentationAlgorithm) throws {
        let fixture = try loadFixture("gluoncv_networks.safetensors")
        let (logits, aux) = try Self.run(
            NetworkConfiguration(algorithm: algorithm, backbone: .resnet50, stem: .deep, classCount: 5),
            fixture: fixture, key: "gluoncv_\(algorithm.rawValue)")
        try Self.expectParity(logits, fixture.tensors["gluoncv_\(algorithm.rawValue)/logits"], "\(algorithm) logits")
        try Self.expectParity(aux!, fixture.tensors["gluoncv_\(algorithm.rawValue)/aux_logits"], "\(algorithm) aux logits")
    }

    /// torchvision's layers with the final resize in SPEC's align_corners = true
    /// convention (see the generator's docstring).
    @Test(arguments: [SegmentationAlgorithm.fcn, .deeplab])
    func torchvision(_ algorithm: SegmentationAlgorithm) throws {
        let fixture = try loadFixture("torchvision_networks.safetensors")
        let (logits, aux) = try Self.run(
            NetworkConfiguration(algorithm: algorithm, backbone: .resnet50, stem: .standard, classCount: 5),
            fixture: fixture, key: "torchvision_\(algorithm.rawValue)")
        try Self.expectParity(logits, fixture.tensors["torchvision_\(algorithm.rawValue)/logits"], "\(algorithm) logits")
        try Self.expectParity(aux!, fixture.tensors["torchvision_\(algorithm.rawValue)/aux_logits"], "\(algorithm) aux logits")
    }
}
