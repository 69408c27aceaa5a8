@testable import Segmentation
import SegmentationTestSupport
import Testing

/// The epilogue fused into a convolution's output pass (inference's BN,
/// residual add and ReLU) on every path that writes an output: Winograd,
/// padding-tap skipping, im2col in bands, im2col of one image split over the
/// workers, the pointwise sgemm. It must equal the layers applied one by
/// one: bit for bit against the same convolution followed by the separate
/// passes, and within the conv tolerance against the direct reference.
@Suite("Convolution epilogue")
struct ConvolutionEpilogueTests {
    static let cases: [ConvGeometry] = [
        ConvGeometry(batch: 2, inputChannels: 16, outputChannels: 24, inputHeight: 13, inputWidth: 11, kernelSize: 3, padding: 1),   // Winograd
        ConvGeometry(batch: 1, inputChannels: 16, outputChannels: 8, inputHeight: 13, inputWidth: 11, kernelSize: 3, padding: 6, dilation: 6),  // padding taps
        ConvGeometry(batch: 2, inputChannels: 8, outputChannels: 5, inputHeight: 31, inputWidth: 17, kernelSize: 3, stride: 2, padding: 1),  // im2col, bands
        ConvGeometry(batch: 1, inputChannels: 7, outputChannels: 6, inputHeight: 9, inputWidth: 8, kernelSize: 3, padding: 1),     // im2col, one image
        ConvGeometry(batch: 3, inputChannels: 9, outputChannels: 5, inputHeight: 7, inputWidth: 9, kernelSize: 1),                 // pointwise
    ]

    /// A convolution's input and weight, a batch norm's scale and shift, and
    /// a residual, drawn from `seed`.
    static func operands(_ g: ConvGeometry, seed: UInt64) -> (x: Tensor, w: Tensor, scale: Tensor, shift: Tensor, residual: Tensor) {
        var generator = SplitMix64(seed: seed)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let scale = Tensor.uniform([g.outputChannels], in: 0.5...2, using: &generator)
        let shift = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        let residual = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        return (x, w, scale, shift, residual)
    }

    @Test(arguments: cases)
    func equalsTheLayersOneByOne(_ g: ConvGeometry) {
        let (x, w, scale, shift, residual) = Self.operands(g, seed: 41)
        let plane = g.outputPlane
        for (withResidual, relu) in [(true, true), (false, true), (false, false), (true, false)] {
            let fused = conv2d(x, weight: w, bias: shift, geometry: g, scale: scale,
                               residual: withResidual ? residual : nil, relu: relu)
            // The same convolution, then each layer's pass.
            let convolved = conv2d(x, weight: w, geometry: g).scalars
            let reference = conv2dReference(x, weight: w, geometry: g).scalars
            var separate = [Float](repeating: 0, count: convolved.count), direct = separate
            for i in convolved.indices {
                let k = (i / plane) % g.outputChannels
                var v = convolved[i] * scale.scalars[k] + shift.scalars[k]
                var d = reference[i] * scale.scalars[k] + shift.scalars[k]
                if withResidual { v += residual.scalars[i]; d += residual.scalars[i] }
                separate[i] = relu ? max(v, 0) : v
                direct[i] = relu ? max(d, 0) : d
            }
            let what = "\(g) residual \(withResidual) relu \(relu)"
            #expect(fused.scalars == separate, "\(what): not the layers' arithmetic")
            expectClose(fused, Tensor(shape: g.outputShape, scalars: direct),
                        absoluteTolerance: 8e-6 * Float(g.columnRows), what)
        }
    }

    /// A pointwise convolution writing over its residual (a ResNet block at
    /// inference): the bits of the fused form with a separate output, in
    /// the residual's own buffer when it was the only reference, and a
    /// shared residual left as it was. With the default blocks of columns
    /// (one per worker here) and with 16-column blocks: blocks that end
    /// inside a plane, several per worker, across two images.
    @Test(arguments: [
        (ConvGeometry(batch: 3, inputChannels: 9, outputChannels: 5, inputHeight: 7, inputWidth: 9, kernelSize: 1), 4 << 20),
        (ConvGeometry(batch: 2, inputChannels: 5, outputChannels: 24, inputHeight: 13, inputWidth: 11, kernelSize: 1), 24 * 16),
    ])
    func overwritesItsResidual(_ g: ConvGeometry, productBudget: Int) {
        let (x, w, scale, shift, residual) = Self.operands(g, seed: 43)
        let kept = residual.scalars
        for relu in [true, false] {
            let expected = conv2d(x, weight: w, bias: shift, geometry: g, scale: scale, residual: residual, relu: relu)
            let shared = conv2d(x, weight: w, bias: shift, geometry: g, workspace: Workspace(), scale: scale, overwriting: residual, relu: relu,
                                productBudget: productBudget)
            #expect(shared.scalars == expected.scalars, "\(g) relu \(relu): not the fused form's bits")
            #expect(residual.scalars == kept, "\(g): a shared residual was written")
            var own = Tensor(shape: g.outputShape, scalars: kept)
            let address = own.withUnsafeMutableBufferPointer { UnsafePointer($0.baseAddress!) }
            let written = conv2d(x, weight: w, bias: shift, geometry: g, workspace: Workspace(), scale: scale,
                                 overwriting: consume own, relu: relu,
                                 productBudget: productBudget)
            #expect(written.withUnsafeBufferPointer { $0.baseAddress! } == address,
                    "\(g): the only reference to the residual was not written in place")
            #expect(written.scalars == expected.scalars, "\(g) relu \(relu): in place, not the fused form's bits")
        }
    }
}
