@testable import Segmentation
import SegmentationTestSupport
import Testing

/// A convolution of parts concatenated along channels with a one-pixel map
/// repeated over every pixel (DeepLabV3's ASPP projection at inference,
/// `conv2d(concatenating:broadcasting:)`): a pointwise convolution adds the
/// constant's share per channel and reads the parts in place, and must
/// agree with the convolution of the built concatenation within float
/// rounding; other convolutions build it and give its bits.
@Suite("Broadcast concatenation")
struct BroadcastConcatenationTests {
    @Test(arguments: [
        ConvGeometry(batch: 2, inputChannels: 49, outputChannels: 13, inputHeight: 9, inputWidth: 11, kernelSize: 1),
        ConvGeometry(batch: 1, inputChannels: 49, outputChannels: 70, inputHeight: 30, inputWidth: 31, kernelSize: 1),
        ConvGeometry(batch: 2, inputChannels: 49, outputChannels: 16, inputHeight: 9, inputWidth: 11, kernelSize: 3, padding: 1),
    ])
    func matchesTheConvolutionOfTheBuiltConcatenation(_ g: ConvGeometry) {
        var generator = SplitMix64(seed: 47)
        let parts = [17, 7, 16].map { Tensor.uniform([g.batch, $0, g.inputHeight, g.inputWidth], in: -1...1, using: &generator) }
        let constant = Tensor.uniform([g.batch, 9, 1, 1], in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let scale = Tensor.uniform([g.outputChannels], in: 0.5...2, using: &generator)
        let shift = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)

        let repeated = bilinearResize(constant, height: g.inputHeight, width: g.inputWidth)
        let built = concatenateChannels(parts + [repeated])
        let expected = conv2d(built, weight: w, bias: shift, geometry: g, scale: scale, relu: true)
        let actual = conv2d(concatenating: parts, broadcasting: constant, weight: w, bias: shift, geometry: g,
                            scale: scale, relu: true)
        #expect(actual.shape == expected.shape)
        if g.isPointwise {
            // Against the float64 direct reference, as any convolution: the
            // sums are only grouped differently.
            let reference = conv2dReference(built, weight: w, geometry: g)
            let affine = Tensor(shape: g.outputShape) { y in
                reference.withPointer { r in
                    for i in 0..<g.outputShape.elementCount {
                        let k = (i / g.outputPlane) % g.outputChannels
                        y[i] = max(r[i] * scale.scalars[k] + shift.scalars[k], 0)
                    }
                }
            }
            expectClose(actual, affine, absoluteTolerance: 2e-6 * Float(g.columnRows) * 2, "\(g) against the reference")
            expectClose(actual, expected, absoluteTolerance: 2e-6 * Float(g.columnRows) * 2, "\(g) against the built concatenation")
            // Not vacuous: the constant's share moves the output.
            let withoutConstant = conv2d(concatenating: parts, broadcasting: Tensor.zeros(constant.shape), weight: w, bias: shift,
                                         geometry: g, scale: scale, relu: true)
            #expect(maximumDifference(withoutConstant, actual) > 0.1)
        } else {
            #expect(actual.scalars == expected.scalars, "\(g): not the bits of the built concatenation's convolution")
        }
    }
}
