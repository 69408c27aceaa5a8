@testable import Segmentation
import Testing

/// A convolution's weight and bias gradients are sums over the batch's
/// images whose bits do not depend on how the batch is split (ExactSum.swift):
/// over the lanes of the kernel (images dealt to workers, leftovers shared by
/// all), over calls, or over data-parallel ranks. SPEC §10's contract (N
/// workers compute what one worker computes on the whole batch) then holds
/// bit for bit, whatever convolution algorithm runs.
///
/// The expected bits are each image's gradient computed alone, summed in
/// Double and rounded once; the batch must give exactly those, on every
/// path: banded lanes with a banded leftover, whole images dealt with a
/// leftover in channel blocks, columns shared by the workers, pointwise,
/// Winograd (whole, and in blocks and chunks), the cropped-kernel path, and
/// batches of two (summed in float, which rounds two terms once).
@Suite("Split-invariant gradients")
struct SplitInvariantGradientTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var geometry: ConvGeometry
        var fastPaths: Bool
        /// The workspace's shared column budget (scalars).
        var budget: Int = 8 << 20
        var bias = true
        var testDescription: String {
            "\(geometry)\(fastPaths ? " fast" : "")\(budget == 8 << 20 ? "" : ", budget \(budget)")"
        }
    }

    static let cases: [Case] = [
        // several bands per image; 5 images on 2 workers leave one to share, band by band
        .init(geometry: ConvolutionTests.g(5, 64, 5, 31, 17, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false),
        .init(geometry: ConvolutionTests.g(2, 64, 5, 31, 17, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false),
        // products large enough for the shared image to split them over the workers (by rows and by columns)
        .init(geometry: ConvolutionTests.g(3, 64, 64, 31, 17, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false),
        .init(geometry: ConvolutionTests.g(3, 240, 48, 7, 6, kh: 3, kw: 3, padding: (4, 4), dilation: (4, 4)), fastPaths: false),
        .init(geometry: ConvolutionTests.g(3, 64, 256, 20, 20, kh: 1, kw: 1), fastPaths: false),
        // deep reduction, one band: whole images dealt and the leftover whole,
        // even where a small budget would cut a shared image into blocks
        .init(geometry: ConvolutionTests.g(3, 240, 3, 7, 6, kh: 3, kw: 3, padding: (4, 4), dilation: (4, 4)), fastPaths: false),
        .init(geometry: ConvolutionTests.g(3, 7, 5, 13, 11, kh: 3, kw: 3, stride: (2, 2), padding: (1, 1)), fastPaths: false, budget: 2 * 9 * 7 * 7 + 1),
        // a layer that shares its columns, in blocks of 66 channels for every image
        .init(geometry: ConvolutionTests.g(3, 512, 15, 31, 31, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false, budget: 66 * 9 * 31 * 31 + 1),
        // columns shared by the workers for every image
        .init(geometry: ConvolutionTests.g(3, 512, 15, 31, 31, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false),
        .init(geometry: ConvolutionTests.g(2, 512, 15, 31, 31, kh: 3, kw: 3, padding: (1, 1)), fastPaths: false, bias: false),
        // pointwise, and a strided projection
        .init(geometry: ConvolutionTests.g(5, 9, 5, 7, 9, kh: 1, kw: 1), fastPaths: false),
        .init(geometry: ConvolutionTests.g(3, 8, 6, 9, 7, kh: 1, kw: 1, stride: (2, 2)), fastPaths: false, bias: false),
        // Winograd: whole; in blocks of 8 channels and chunks of 8 tiles; a batch of two
        .init(geometry: ConvolutionTests.g(5, 32, 32, 30, 30, kh: 3, kw: 3, padding: (2, 2), dilation: (2, 2)), fastPaths: true),
        .init(geometry: ConvolutionTests.g(3, 20, 16, 14, 13, kh: 3, kw: 3, padding: (1, 1)), fastPaths: true, budget: 2 * 36 * 16 * 8),
        .init(geometry: ConvolutionTests.g(2, 64, 64, 8, 8, kh: 3, kw: 3, padding: (1, 1)), fastPaths: true),
        // FCN's layer4 at crop 32 (the data-parallel test's): the kernel cropped to its centre tap
        .init(geometry: ConvolutionTests.g(6, 512, 512, 4, 4, kh: 3, kw: 3, padding: (4, 4), dilation: (4, 4)), fastPaths: true, bias: false),
        .init(geometry: ConvolutionTests.g(6, 256, 128, 4, 4, kh: 3, kw: 3, padding: (1, 1)), fastPaths: true, bias: false),
    ]

    /// (dW, db, dW's low part, db's low part) of `images` of the batch, from zero.
    static func gradients(_ c: Case, x: Tensor, dy: Tensor, w: Tensor, images: Range<Int>, withLowParts: Bool)
        -> (weight: [Float], bias: [Float], weightLow: [Float], biasLow: [Float], input: [Float])
    {
        var part = c.geometry
        part.batch = images.count
        let x = x.images(images), dy = dy.images(images)
        var dw = [Float](repeating: 0, count: part.weightShape.elementCount), dwLow = dw
        var db = [Float](repeating: 0, count: part.outputChannels), dbLow = db
        var dx = [Float](repeating: 0, count: part.inputShape.elementCount)
        let workspace = Workspace(sharedColumnBudget: c.budget, boundsWinogradScratch: true)
        x.withPointer { xp in dy.withPointer { dyp in w.withPointer { wp in
            dw.withUnsafeMutableBufferPointer { dwp in dwLow.withUnsafeMutableBufferPointer { dwl in
                db.withUnsafeMutableBufferPointer { dbp in dbLow.withUnsafeMutableBufferPointer { dbl in dx.withUnsafeMutableBufferPointer { dxp in
                    conv2dBackward(inputGradient: dxp.baseAddress, weightGradient: dwp.baseAddress, biasGradient: c.bias ? dbp.baseAddress : nil,
                                   outputGradient: dyp, input: xp, weight: wp, geometry: part, workspace: workspace,
                                   fastPaths: c.fastPaths, weightGradientLow: withLowParts ? dwl.baseAddress : nil,
                                   biasGradientLow: withLowParts && c.bias ? dbl.baseAddress : nil)
                } } }
            } }
        } } }
        return (dw, db, dwLow, dbLow, dx)
    }

    @Test(arguments: cases)
    func batchGradientsAreTheRoundedExactSumOfEachImages(_ c: Case) {
        let g = c.geometry
        var generator = SplitMix64(seed: 71)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        var weightSums = [Double](repeating: 0, count: g.weightShape.elementCount)
        var biasSums = [Double](repeating: 0, count: g.outputChannels)
        var inputGradients: [Float] = []
        for n in 0..<g.batch {
            let alone = Self.gradients(c, x: x, dy: dy, w: w, images: n..<n + 1, withLowParts: false)
            inputGradients += alone.input
            for i in weightSums.indices { weightSums[i] += Double(alone.weight[i]) }
            for i in biasSums.indices { biasSums[i] += Double(alone.bias[i]) }
        }
        let whole = Self.gradients(c, x: x, dy: dy, w: w, images: 0..<g.batch, withLowParts: false)
        let mismatches = zip(whole.weight, weightSums).filter { $0.bitPattern != Float($1).bitPattern }.count
        #expect(mismatches == 0, "\(mismatches) of \(weightSums.count) weight-gradient elements differ from the images' rounded sum")
        #expect(whole.bias.map(\.bitPattern) == biasSums.map { Float($0).bitPattern }, "bias gradient")
        #expect(whole.weight.contains { $0 != 0 }, "a weight gradient of zeros proves nothing")
        // Each image's data gradient is the one it gets alone (a lane's, or a shared image's, on one path).
        #expect(whole.input.map(\.bitPattern) == inputGradients.map(\.bitPattern), "input gradient")

        // Ranks: each part's sum in a high and a low part, added over the parts in Double, rounds to the whole's bits.
        let splits: [[Range<Int>]] = g.batch == 2 ? [[0..<1, 1..<2]]
            : [[0..<1, 1..<g.batch], [0..<2, 2..<g.batch], (0..<g.batch).map { $0..<$0 + 1 }]
        for split in splits {
            var weight = [Double](repeating: 0, count: weightSums.count), bias = [Double](repeating: 0, count: biasSums.count)
            for images in split {
                let part = Self.gradients(c, x: x, dy: dy, w: w, images: images, withLowParts: true)
                for i in weight.indices { weight[i] += Double(part.weight[i]) + Double(part.weightLow[i]) }
                for i in bias.indices { bias[i] += Double(part.bias[i]) + Double(part.biasLow[i]) }
            }
            let differing = zip(whole.weight, weight).filter { $0.bitPattern != Float($1).bitPattern }.count
            #expect(differing == 0, "ranks \(split): \(differing) weight-gradient elements differ from one rank's")
            #expect(whole.bias.map(\.bitPattern) == bias.map { Float($0).bitPattern }, "ranks \(split): bias gradient")
        }
    }

    /// The Double sums' bookkeeping: a float sum of two terms and the split
    /// of a Double into a high and a low float.
    @Test func highAndLowPartsCarryTheSumPastOneRounding() {
        let sum = 1.0 + 0x1p-30
        let (high, low) = splitExactSum(sum)
        #expect(high == 1 && Double(low) == 0x1p-30)
        // Two ranks' sums a = ½ + 2⁻²⁵ (a tie, rounds to ½) and b = ½ + 2⁻²⁵ + 2⁻⁴⁰
        // (rounds up): rounded separately and added, 1 + 2⁻²⁴ ties to 1; the
        // exact 1 + 2⁻²⁴ + 2⁻⁴⁰ rounds to 1 + 2⁻²³, and so do their parts.
        let a = splitExactSum(0.5 + 0x1p-25), b = splitExactSum(0.5 + 0x1p-25 + 0x1p-40)
        #expect(a.high + b.high == 1)
        #expect(Float(Double(a.high) + Double(a.low) + Double(b.high) + Double(b.low)) == 1 + 0x1p-23)
        #expect(splitExactSum(.infinity).low == 0 && splitExactSum(.infinity).high == .infinity)
    }
}
