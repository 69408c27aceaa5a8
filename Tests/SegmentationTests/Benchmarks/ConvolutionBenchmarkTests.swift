@testable import Segmentation
import Testing

/// `segment bench conv --layer`: the layers a user names.
@Suite("ConvolutionBenchmark")
struct ConvolutionBenchmarkTests {
    @Test func layersParseAsTheTableNamesThem() throws {
        let aspp = try #require(ConvolutionBenchmark.Shape(parsing: "3x3 2048->256 d12 @60x60", batch: 1))
        #expect(aspp.name == "3x3 2048->256 d12 @60x60")
        #expect(aspp.geometry == ConvGeometry(batch: 1, inputChannels: 2048, outputChannels: 256, inputHeight: 60, inputWidth: 60,
                                              kernelSize: 3, stride: 1, padding: 12, dilation: 12))
        let pointwise = try #require(ConvolutionBenchmark.Shape(parsing: " 1x1 1024->2048 @30x40 ", batch: 2))
        #expect(pointwise.geometry.batch == 2 && pointwise.geometry.paddingHeight == 0 && pointwise.geometry.dilationHeight == 1)
        #expect(pointwise.geometry.outputHeight == 30 && pointwise.geometry.outputWidth == 40)
        // Each name's own geometry round-trips.
        for shape in ConvolutionBenchmark.resnet50Shapes(batch: 2) where !shape.name.contains("(") {
            #expect(ConvolutionBenchmark.Shape(parsing: shape.name, batch: 2)?.geometry == shape.geometry, "\(shape.name)")
        }
    }

    @Test(arguments: ["", "3x3 2048->256", "3x5 8->8 @9x9", "2x2 8->8 @9x9", "3x3 0->8 @9x9", "3x3 8->8 d0 @9x9",
                      "3x3 8->8 @0x9", "3x3 8->8 @9x9 extra", "3x3 99999999->99999999 @60x60", "3x3 8->8 d9999999 @9x9",
                      "3x3 9223372036854775807->8 @9223372036854775807x9223372036854775807", "99x99 8->8 @9x9",
                      "3x3 99999999999999999999->8 @9x9"])
    func malformedLayersAreRefused(_ text: String) {
        #expect(ConvolutionBenchmark.Shape(parsing: text, batch: 1) == nil)
    }
}
