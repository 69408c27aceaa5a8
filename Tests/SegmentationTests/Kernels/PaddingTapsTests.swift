@testable import Segmentation
import SegmentationTestSupport
import Testing

/// The padding-skipping convolution against the direct reference, on
/// dilations where most taps read padding (DeepLab's ASPP), a dilation larger
/// than the map (only the centre tap reads inside), asymmetric geometry, and
/// bands of rows forced small.
@Suite("Padding taps")
struct PaddingTapsTests {
    static let cases: [ConvGeometry] = [
        // ASPP-like: 60×60 at rate 24/36 scaled down
        ConvGeometry(batch: 2, inputChannels: 16, outputChannels: 8, inputHeight: 13, inputWidth: 11, kernelSize: 3, padding: 6, dilation: 6),
        ConvGeometry(batch: 1, inputChannels: 5, outputChannels: 7, inputHeight: 10, inputWidth: 10, kernelSize: 3, padding: 6, dilation: 6),
        // dilation beyond the map: every output reads the centre tap alone
        ConvGeometry(batch: 1, inputChannels: 4, outputChannels: 3, inputHeight: 6, inputWidth: 5, kernelSize: 3, padding: 9, dilation: 9),
        // asymmetric kernel, padding and dilation
        ConvGeometry(batch: 2, inputChannels: 3, outputChannels: 4, inputHeight: 9, inputWidth: 12,
                     kernelHeight: 3, kernelWidth: 5, strideHeight: 1, strideWidth: 1,
                     paddingHeight: 4, paddingWidth: 6, dilationHeight: 4, dilationWidth: 3),
        // padding beyond the reach: whole rows of outputs with no valid tap
        ConvGeometry(batch: 1, inputChannels: 2, outputChannels: 3, inputHeight: 4, inputWidth: 4, kernelSize: 3, padding: 4),
    ]

    @Test(arguments: cases)
    func matchesReference(_ g: ConvGeometry) {
        var generator = SplitMix64(seed: 31)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        let reference = conv2dReference(x, weight: w, bias: b, geometry: g)
        for budget in [8 << 20, 1] {   // whole rectangles, and one row per band
            let fast = Tensor(shape: g.outputShape) { y in
                x.withPointer { xp in w.withPointer { wp in b.withPointer { bp in
                    paddingSkippingForward(output: y.baseAddress!, input: xp, weight: wp, epilogue: .bias(bp), geometry: g,
                                           workspace: Workspace(), columnBudget: budget)
                } } }
            }
            expectClose(fast, reference, absoluteTolerance: 2e-6 * Float(g.columnRows), "\(g), budget \(budget)")
        }
    }

    @Test func segmentsOfDeepLabsRates() {
        // rate 36 on 60: outputs 0..<24 read rows p and p+36; 24..<36 only p; 36..<60 p−36 and p
        let segments = tapSegments(outputExtent: 60, inputExtent: 60, kernel: 3, padding: 36, dilation: 36)
        #expect(segments == [TapSegment(outputs: 0..<24, taps: 1..<3), TapSegment(outputs: 24..<36, taps: 1..<2),
                             TapSegment(outputs: 36..<60, taps: 0..<2)])
        func aspp(_ rate: Int) -> ConvGeometry {
            ConvGeometry(batch: 1, inputChannels: 2048, outputChannels: 256, inputHeight: 60, inputWidth: 60,
                         kernelSize: 3, padding: rate, dilation: rate)
        }
        #expect(abs(PaddingTaps.validFraction(aspp(36)) - 0.36) < 1e-9)
        #expect(abs(PaddingTaps.validFraction(aspp(24)) - (2.2 / 3) * (2.2 / 3)) < 1e-9)
        #expect(PaddingTaps.applies(to: aspp(12)) && PaddingTaps.applies(to: aspp(24)) && PaddingTaps.applies(to: aspp(36)))
        // an ordinary 3×3 on a 60×60 map reads padding only at its border
        #expect(!PaddingTaps.applies(to: aspp(1)))
    }

    /// The error on an ASPP-sized layer (rate 36 on 60×60) against the
    /// float64 reference, next to im2col's (printed for Docs/performance.md).
    @Test func errorOnARealLayerIsSmall() {
        let g = ConvGeometry(batch: 1, inputChannels: 256, outputChannels: 16, inputHeight: 60, inputWidth: 60,
                             kernelSize: 3, padding: 36, dilation: 36)
        #expect(PaddingTaps.applies(to: g) && Winograd.workFraction(g) > PaddingTaps.validFraction(g), "tap skipping runs")
        var generator = SplitMix64(seed: 33)
        let x = Tensor.uniform(g.inputShape, in: 0...1, using: &generator)
        let scale: Float = (6 / Float(g.columnRows)).squareRoot()
        let w = Tensor.uniform(g.weightShape, in: -scale...scale, using: &generator)
        let reference = conv2dReference(x, weight: w, geometry: g)
        let size = maximumMagnitude(reference)
        let skipping = maximumDifference(conv2d(x, weight: w, geometry: g, fastPaths: true), reference) / size
        let im2col = maximumDifference(conv2d(x, weight: w, geometry: g, fastPaths: false), reference) / size
        print("Padding-tap skipping: max error / max|y| = \(skipping); im2col + sgemm: \(im2col)")
        #expect(skipping < 2e-6)
    }

    @Test func theLayerUsesItOnlyWithFastPaths() {
        let g = Self.cases[0]
        var generator = SplitMix64(seed: 32)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let reference = conv2dReference(x, weight: w, geometry: g)
        for fast in [true, false] {
            expectClose(conv2d(x, weight: w, geometry: g, fastPaths: fast), reference,
                        absoluteTolerance: 2e-6 * Float(g.columnRows), "fastPaths \(fast)")
        }
    }

    /// Taps that only ever read padding are dropped from the backward: at
    /// dilation 36 on 30×30 only the centre tap reads the image (a 1×1
    /// convolution); dilation 8 on 7 rows with 1 on 9 columns keeps a 1×3
    /// kernel; dilation 24 on 30×30 keeps all. Gradients accumulate into
    /// non-zero tensors, and the dropped taps' weight gradient stays as it
    /// was (theirs is exactly zero).
    @Test func backwardWithoutTheTapsThatNeverReadTheImage() throws {
        let centre = ConvGeometry(batch: 2, inputChannels: 8, outputChannels: 6, inputHeight: 30, inputWidth: 30,
                                  kernelSize: 3, padding: 36, dilation: 36)
        let row = ConvGeometry(batch: 1, inputChannels: 5, outputChannels: 7, inputHeight: 7, inputWidth: 9,
                               kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                               paddingHeight: 8, paddingWidth: 1, dilationHeight: 8, dilationWidth: 1)
        #expect(PaddingTaps.centredValidTaps(ConvGeometry(batch: 1, inputChannels: 8, outputChannels: 6, inputHeight: 30,
                                                          inputWidth: 30, kernelSize: 3, padding: 24, dilation: 24)) == nil)
        let centreCrop = try #require(PaddingTaps.centredValidTaps(centre))
        #expect(centreCrop.rows == 1..<2 && centreCrop.columns == 1..<2 && centreCrop.geometry.isPointwise)
        let rowCrop = try #require(PaddingTaps.centredValidTaps(row))
        #expect(rowCrop.rows == 1..<2 && rowCrop.columns == 0..<3 && rowCrop.geometry.kernelWidth == 3)
        for g in [centre, row] {
            var generator = SplitMix64(seed: 31)
            let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
            let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
            let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
            let startX = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
            let startW = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
            let startB = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
            var dx: Tensor? = startX, dw: Tensor? = startW, db: Tensor? = startB
            conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db, outputGradient: dy,
                           input: x, weight: w, geometry: g, fastPaths: true)
            let reference = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g)
            let reduction = Float(g.batch * g.outputPlane)
            expectClose(dx!, add(startX, reference.input), absoluteTolerance: 2e-6 * Float(g.outputChannels * 9), "input gradient \(g)")
            expectClose(dw!, add(startW, reference.weight), absoluteTolerance: 2e-6 * reduction, "weight gradient \(g)")
            expectClose(db!, add(startB, reference.bias), absoluteTolerance: 2e-6 * reduction, "bias gradient \(g)")
            // The dropped taps: untouched, bit for bit.
            let crop = try #require(PaddingTaps.centredValidTaps(g))
            for i in 0..<(g.outputChannels * g.inputChannels) {
                for r in 0..<3 {
                    for c in 0..<3 where !(crop.rows.contains(r) && crop.columns.contains(c)) {
                        let at = (i * 3 + r) * 3 + c
                        #expect(dw!.scalars[at] == startW.scalars[at], "dropped tap \(r),\(c) of kernel \(i), \(g)")
                    }
                }
            }
        }
    }
}
