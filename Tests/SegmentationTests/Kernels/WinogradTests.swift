@testable import Segmentation
import SegmentationTestSupport
import Testing

/// Winograd F(4×4, 3×3) against the direct six-loop reference (Double
/// accumulation), forward, data gradient and weight gradient, on shapes with partial tiles,
/// dilation (sub-grids of different sizes), asymmetric padding and dilation,
/// padding other than the dilation, and several images.
///
/// Tolerance: the transforms multiply by up to 8 and add up to 36 terms, so
/// the float32 error is larger than im2col's, but still of the order of
/// 1e-6 · Σ|w·x|; a wrong tap or a lost tile moves an output by a whole term
/// (~0.1 here), 100× the tolerance.
@Suite("Winograd")
struct WinogradTests {
    static let cases: [ConvGeometry] = [
        // partial tiles on both axes, bias
        ConvGeometry(batch: 1, inputChannels: 17, outputChannels: 19, inputHeight: 13, inputWidth: 11, kernelSize: 3, padding: 1),
        // dilation 2: four sub-grids of different sizes, two images
        ConvGeometry(batch: 2, inputChannels: 16, outputChannels: 24, inputHeight: 10, inputWidth: 9, kernelSize: 3, padding: 2, dilation: 2),
        // asymmetric dilation and padding
        ConvGeometry(batch: 1, inputChannels: 20, outputChannels: 16, inputHeight: 14, inputWidth: 15,
                     kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                     paddingHeight: 3, paddingWidth: 1, dilationHeight: 3, dilationWidth: 1),
        // no padding (output smaller than the input), three images
        ConvGeometry(batch: 3, inputChannels: 16, outputChannels: 16, inputHeight: 7, inputWidth: 6, kernelSize: 3),
        // padding larger than the dilation (output larger than the input)
        ConvGeometry(batch: 1, inputChannels: 32, outputChannels: 17, inputHeight: 9, inputWidth: 9, kernelSize: 3, padding: 2),
        // short sub-grids (dilation 6 on 13×11): tiles cut from the mosaic of sub-grids
        ConvGeometry(batch: 2, inputChannels: 16, outputChannels: 16, inputHeight: 13, inputWidth: 11, kernelSize: 3, padding: 6, dilation: 6),
        // many tiles: several chunks per worker
        ConvGeometry(batch: 2, inputChannels: 16, outputChannels: 16, inputHeight: 45, inputWidth: 43, kernelSize: 3, padding: 1),
    ]

    @Test(arguments: cases)
    func forwardMatchesReference(_ g: ConvGeometry) {
        #expect(Winograd.applies(to: g), "\(g) should take the Winograd path")
        var generator = SplitMix64(seed: 21)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        // conv2d dispatches to Winograd for this geometry
        let fast = conv2d(x, weight: w, bias: b, geometry: g)
        let reference = conv2dReference(x, weight: w, bias: b, geometry: g)
        expectClose(fast, reference, absoluteTolerance: 4e-6 * Float(g.columnRows), "\(g)")
        // and the kernel called directly, without a bias
        let direct = Tensor(shape: g.outputShape) { y in
            x.withPointer { xp in w.withPointer { wp in
                winogradForward(output: y.baseAddress!, input: xp, weight: wp, epilogue: ConvolutionEpilogue(), geometry: g, workspace: Workspace())
            } }
        }
        expectClose(direct, conv2dReference(x, weight: w, geometry: g), absoluteTolerance: 4e-6 * Float(g.columnRows), "no bias \(g)")
    }

    @Test(arguments: cases)
    func dataGradientMatchesReference(_ g: ConvGeometry) throws {
        let gradientGeometry = try #require(winogradDataGradientGeometry(g), "\(g) should have a Winograd data gradient")
        #expect(gradientGeometry.outputShape == g.inputShape)
        var generator = SplitMix64(seed: 22)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        // Accumulates into a non-zero dX, as conv2dBackward does.
        let start = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        var dx: Tensor? = start, dw: Tensor? = .zeros(g.weightShape), db: Tensor? = .zeros([g.outputChannels])
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db,
                       outputGradient: dy, input: x, weight: w, geometry: g)
        let reference = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g)
        let expected = add(start, reference.input)
        expectClose(dx!, expected, absoluteTolerance: 4e-6 * Float(g.outputChannels * 9), "input gradient \(g)")
        let reduction = Float(g.batch * g.outputPlane)
        expectClose(dw!, reference.weight, absoluteTolerance: 2e-6 * reduction, "weight gradient \(g)")
        expectClose(db!, reference.bias, absoluteTolerance: 2e-6 * reduction, "bias gradient \(g)")
    }

    /// In a training workspace, past its budget, the kernels are transformed
    /// a block of channels at a time, of the larger side: 520 → 480 is cut
    /// into blocks of 174 input channels (the last one partial) whose M are
    /// summed, its data gradient (a convolution 480 → 520) into blocks of
    /// 174 output channels; 480 → 520 the other way round. Forward with a bias (the
    /// epilogue of an output block), data gradient accumulated; an
    /// inference workspace keeps the kernels whole.
    @Test(arguments: [(520, 480), (480, 520)])
    func blocksOfTransformedKernelsMatchReference(_ channels: (Int, Int)) {
        let g = ConvGeometry(batch: 2, inputChannels: channels.0, outputChannels: channels.1, inputHeight: 6, inputWidth: 5,
                             kernelSize: 3, padding: 1)
        let workspace = Workspace.training()
        let forward = WinogradPlan(g, workspace: workspace), gradient = WinogradPlan(winogradDataGradientGeometry(g)!, workspace: workspace)
        #expect(forward.kernelBlock == 174 && gradient.kernelBlock == 174)
        #expect(forward.blocksOutputChannels == (g.outputChannels > g.inputChannels) && gradient.blocksOutputChannels != forward.blocksOutputChannels)
        #expect(WinogradPlan(g, workspace: Workspace()).kernelBlock == g.inputChannels)
        var generator = SplitMix64(seed: 25)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        expectClose(conv2d(x, weight: w, bias: b, geometry: g, workspace: workspace),
                    conv2dReference(x, weight: w, bias: b, geometry: g), absoluteTolerance: 4e-6 * Float(g.columnRows), "forward \(g)")
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        let start = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        var dx: Tensor? = start, none: Tensor? = nil, noBias: Tensor? = nil
        conv2dBackward(inputGradient: &dx, weightGradient: &none, biasGradient: &noBias, outputGradient: dy, input: x, weight: w,
                       geometry: g, workspace: workspace)
        expectClose(dx!, add(start, conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g).input),
                    absoluteTolerance: 4e-6 * Float(g.outputChannels * 9), "data gradient \(g)")
    }

    /// Past the budget, the chunks' M kept across the blocks of input
    /// channels are a pass of chunks at a time, the kernels transformed
    /// again for each pass (a 1024² image's FCN head and layer4): three
    /// images in passes of two give each image the bits it gets alone (one
    /// pass), and the reference's values.
    @Test func passesOfChunksKeepEachImagesBits() {
        let g = ConvGeometry(batch: 3, inputChannels: 40, outputChannels: 16, inputHeight: 20, inputWidth: 22,
                             kernelSize: 3, padding: 1)
        let budget = 2 * 36 * g.outputChannels * 10
        func workspace() -> Workspace { Workspace(sharedColumnBudget: budget, boundsWinogradScratch: true) }
        let plan = WinogradPlan(g, workspace: workspace())
        #expect(plan.kernelBlock == 10 && plan.chunksPerImage == 1 && plan.itemsPerPass == 2, "\(plan)")
        var generator = SplitMix64(seed: 46)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        let batch = conv2d(x, weight: w, bias: b, geometry: g, workspace: workspace())
        expectClose(batch, conv2dReference(x, weight: w, bias: b, geometry: g), absoluteTolerance: 4e-6 * Float(g.columnRows), "\(g)")
        var single = g
        single.batch = 1
        for n in 0..<g.batch {
            let alone = conv2d(x.images(n..<n + 1), weight: w, bias: b, geometry: single, workspace: workspace())
            #expect(alone == batch.images(n..<n + 1), "image \(n): not the bits it gets alone")
        }
    }

    /// The weight gradient as the adjoint of the Winograd forward, called
    /// directly, accumulating into a non-zero dW: with the default budget
    /// (one block of channels, one chunk of tiles) and with one small enough
    /// to need several blocks of input channels (one of them partial) and
    /// several chunks of tiles, some straddling two images.
    @Test(arguments: cases)
    func weightGradientMatchesReference(_ g: ConvGeometry) {
        var generator = SplitMix64(seed: 24)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        let start = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let reference = conv2dBackwardReference(outputGradient: dy, input: x, weight: start, geometry: g).weight
        let expected = add(start, reference)
        let tiles = g.batch * Winograd.tilesPerImage(g)
        // Blocks of 8 input channels (17 and 20 leave a partial one), chunks
        // of 8 tiles (the second case's 12 tiles per image: chunks straddle images).
        let smallBudget = 2 * 36 * g.outputChannels * 8
        let small = WinogradGradientLayout(g, tiles: tiles, budget: smallBudget)
        #expect(small.blockChannels == 8 && small.chunk == 8, "\(g): \(small), \(tiles) tiles")
        for budget in [8 << 20, smallBudget] {
            var dw = start
            dw.withMutablePointer { dwp in dy.withPointer { dyp in x.withPointer { xp in
                winogradWeightGradient(weightGradient: dwp, outputGradient: dyp, input: xp, geometry: g,
                                       workspace: Workspace(sharedColumnBudget: budget))
            } } }
            expectClose(dw, expected, absoluteTolerance: 2e-6 * Float(g.batch * g.outputPlane), "budget \(budget), \(g)")
        }
    }

    /// An image's output does not depend on the batch it is computed in
    /// (data-parallel training splits batches and must match one worker), in
    /// the forward and the data gradient, bit for bit; nor on what the
    /// reused workspace held before (the splits run on one that is full of
    /// large stale values). The later geometries are FCN's at crop 32, the
    /// data-parallel test's: dilated 4×4 maps, where tap skipping competes.
    @Test(arguments: [
        ConvGeometry(batch: 6, inputChannels: 64, outputChannels: 64, inputHeight: 8, inputWidth: 8, kernelSize: 3, padding: 1),
        ConvGeometry(batch: 6, inputChannels: 256, outputChannels: 128, inputHeight: 4, inputWidth: 4, kernelSize: 3, padding: 1),
        ConvGeometry(batch: 5, inputChannels: 32, outputChannels: 32, inputHeight: 30, inputWidth: 30, kernelSize: 3, padding: 2, dilation: 2),
        ConvGeometry(batch: 6, inputChannels: 512, outputChannels: 512, inputHeight: 4, inputWidth: 4, kernelSize: 3, padding: 4, dilation: 4),
        ConvGeometry(batch: 6, inputChannels: 256, outputChannels: 256, inputHeight: 4, inputWidth: 4, kernelSize: 3, padding: 2, dilation: 2),
        ConvGeometry(batch: 6, inputChannels: 2048, outputChannels: 512, inputHeight: 4, inputWidth: 4, kernelSize: 3, padding: 1),
    ])
    func imagesDoNotDependOnTheirBatch(_ g: ConvGeometry) {
        var generator = SplitMix64(seed: 24)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        let whole = conv2d(x, weight: w, geometry: g)
        var dxWhole: Tensor? = .zeros(g.inputShape), none: Tensor? = nil, noBias: Tensor? = nil
        conv2dBackward(inputGradient: &dxWhole, weightGradient: &none, biasGradient: &noBias,
                       outputGradient: dy, input: x, weight: w, geometry: g)
        let stale = Workspace()
        func soil() {
            let count = 4 * (g.inputShape.elementCount + g.outputShape.elementCount) + Winograd.transformedWeightCount(g)
            let scratch = stale.scratch(count)
            for i in 0..<count { scratch[i] = Float(i % 977) * 1e3 }
        }
        for split in [1, 2, 3] where g.batch % split == 0 && split < g.batch {
            var part = g
            part.batch = split
            for start in stride(from: 0, to: g.batch, by: split) {
                let images = start..<(start + split)
                soil()
                let y = conv2d(x.images(images), weight: w, geometry: part, workspace: stale)
                #expect(y == whole.images(images), "forward of images \(images) of \(g)")
                var dx: Tensor? = .zeros(part.inputShape)
                soil()
                conv2dBackward(inputGradient: &dx, weightGradient: &none, biasGradient: &noBias,
                               outputGradient: dy.images(images), input: x.images(images), weight: w, geometry: part,
                               workspace: stale)
                #expect(dx! == dxWhole!.images(images), "data gradient of images \(images) of \(g)")
            }
        }
    }

    @Test func tileOriginsCoverEveryOutputOnce() {
        for (extent, dilation) in [(60, 1), (60, 2), (60, 4), (30, 4), (7, 3), (5, 12), (1, 1)] {
            var covered = [Int](repeating: 0, count: extent)
            for origin in Winograd.origins(extent: extent, dilation: dilation) {
                for i in 0..<4 where origin + i * dilation < extent { covered[origin + i * dilation] += 1 }
            }
            #expect(covered.allSatisfy { $0 == 1 }, "extent \(extent) dilation \(dilation): \(covered)")
        }
    }

    /// Both tilings read and write every position the direct form does: each
    /// output once, each input where the kernel reaches it.
    @Test func mosaicTilesCoverEveryOutputOnceAndReadTheRightInputs() {
        for (extent, dilation) in [(60, 12), (60, 24), (13, 6), (30, 4), (7, 2)] {
            let axis = WinogradAxis.mosaic(extent: extent, dilation: dilation)
            var covered = [Int](repeating: 0, count: extent)
            for tile in 0..<axis.count {
                for i in 0..<4 {
                    let output = axis.outputs[4 * tile + i]
                    guard output >= 0 else { continue }
                    covered[output] += 1
                    // output i of the tile reads inputs i, i + 1, i + 2: output − d, output, output + d
                    for t in 0..<3 {
                        let expected = output + (t - 1) * dilation
                        #expect(axis.inputs[6 * tile + i + t] == (expected >= 0 && expected < extent ? expected : -1),
                                "extent \(extent) dilation \(dilation) tile \(tile) output \(output) tap \(t)")
                    }
                }
            }
            #expect(covered.allSatisfy { $0 == 1 }, "extent \(extent) dilation \(dilation): \(covered)")
        }
        // rate 12 on a 60-pixel axis: 18 tiles instead of 24
        #expect(WinogradAxis.best(outputExtent: 60, inputExtent: 60, padding: 12, dilation: 12).count == 18)
    }

    @Test func choosesWinogradOnlyWhereItSavesWork() {
        func conv(_ c: Int, _ k: Int, _ size: Int, kernel: Int = 3, stride: Int = 1, dilation: Int = 1) -> ConvGeometry {
            ConvGeometry(batch: 1, inputChannels: c, outputChannels: k, inputHeight: size, inputWidth: size,
                         kernelSize: kernel, stride: stride, padding: dilation * (kernel / 2), dilation: dilation)
        }
        #expect(Winograd.applies(to: conv(2048, 512, 60)))              // FCN head at 480²
        #expect(Winograd.applies(to: conv(512, 512, 60, dilation: 4)))  // layer4 at 480²
        #expect(Winograd.applies(to: conv(256, 256, 30, dilation: 2)))  // layer3 at crop 240
        // ASPP: rate 12 by Winograd on the mosaic of sub-grids (0.36 of the direct
        // work); rate 36 leaves tap skipping less work (0.36 against 0.64)
        #expect(abs(Winograd.workFraction(conv(2048, 256, 60, dilation: 12)) - 0.36) < 1e-9)
        #expect(Winograd.workFraction(conv(2048, 256, 60, dilation: 36)) > PaddingTaps.validFraction(conv(2048, 256, 60, dilation: 36)))
        #expect(!Winograd.applies(to: conv(64, 64, 60, stride: 2)))
        #expect(!Winograd.applies(to: conv(64, 64, 60, kernel: 1)))
        #expect(!Winograd.applies(to: conv(3, 64, 60)))
    }

    /// The error on a layer of real size against the float64 reference, next
    /// to im2col + sgemm's on the same data (printed for Docs/performance.md).
    @Test func errorOnARealLayerIsSmall() {
        let g = ConvGeometry(batch: 1, inputChannels: 256, outputChannels: 32, inputHeight: 30, inputWidth: 30,
                             kernelSize: 3, padding: 2, dilation: 2)
        var generator = SplitMix64(seed: 23)
        // Activations after ReLU (≥ 0) and Kaiming-scaled weights, as in the network.
        let x = Tensor.uniform(g.inputShape, in: 0...1, using: &generator)
        let scale: Float = (6 / Float(g.columnRows)).squareRoot()
        let w = Tensor.uniform(g.weightShape, in: -scale...scale, using: &generator)
        let reference = conv2dReference(x, weight: w, geometry: g)
        let winograd = Tensor(shape: g.outputShape) { y in
            x.withPointer { xp in w.withPointer { wp in
                winogradForward(output: y.baseAddress!, input: xp, weight: wp, epilogue: ConvolutionEpilogue(), geometry: g, workspace: Workspace())
            } }
        }
        var im2col = Tensor.zeros(g.outputShape)
        im2col.withMutablePointer { y in x.withPointer { xp in w.withPointer { wp in
            // the im2col path, bypassing the dispatch
            conv2dForwardIm2col(output: y, input: xp, weight: wp, epilogue: ConvolutionEpilogue(), geometry: g, workspace: Workspace())
        } } }
        let scaleOfOutput = maximumMagnitude(reference)
        let winogradError = maximumDifference(winograd, reference) / scaleOfOutput
        let im2colError = maximumDifference(im2col, reference) / scaleOfOutput
        print("Winograd F(4x4,3x3) forward: max error / max|y| = \(winogradError); im2col + sgemm: \(im2colError)")
        #expect(winogradError < 1e-5)

        // The data gradient (a Winograd convolution of dY) against the float64 reference.
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        let expected = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g).input
        /// One gradient by the fast paths and by im2col, each as max |error| / max |expected|.
        func errors(input: Bool, expected: Tensor) -> (fast: Float, im2col: Float) {
            let results = [true, false].map { fastPaths -> Tensor in
                var dx: Tensor? = input ? .zeros(g.inputShape) : nil, dw: Tensor? = input ? nil : .zeros(g.weightShape)
                var noBias: Tensor? = nil
                conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &noBias, outputGradient: dy,
                               input: x, weight: w, geometry: g, fastPaths: fastPaths)
                return input ? dx! : dw!
            }
            let scale = maximumMagnitude(expected)
            return (maximumDifference(results[0], expected) / scale, maximumDifference(results[1], expected) / scale)
        }
        let (winogradGradientError, col2imError) = errors(input: true, expected: expected)
        print("Winograd F(4x4,3x3) data gradient: max error / max|dx| = \(winogradGradientError); im2col + col2im: \(col2imError)")
        #expect(winogradGradientError < 1e-5)

        // The weight gradient (the adjoint of the Winograd forward) against the float64 reference.
        let expectedWeight = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g).weight
        let (winogradWeightError, im2colWeightError) = errors(input: false, expected: expectedWeight)
        print("Winograd F(4x4,3x3) weight gradient: max error / max|dw| = \(winogradWeightError); im2col + sgemm: \(im2colWeightError)")
        #expect(winogradWeightError < 1e-5)
    }

    /// A convolution of a concatenation along channels that reads its parts
    /// where they are (PSP's head at inference): the bits of the convolution
    /// of the built concatenation, with the whole scratch and with blocks
    /// of input channels that straddle the parts; a geometry Winograd does
    /// not run (stride 2) concatenates and gives the same bits too.
    @Test(arguments: [
        ConvGeometry(batch: 2, inputChannels: 40, outputChannels: 16, inputHeight: 9, inputWidth: 11, kernelSize: 3, padding: 1),
        ConvGeometry(batch: 2, inputChannels: 40, outputChannels: 16, inputHeight: 9, inputWidth: 11, kernelSize: 3, stride: 2, padding: 1),
    ])
    func readsTheConcatenatedPartsInPlace(_ g: ConvGeometry) {
        var generator = SplitMix64(seed: 45)
        let parts = [17, 7, 16].map { Tensor.uniform([g.batch, $0, g.inputHeight, g.inputWidth], in: -1...1, using: &generator) }
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let scale = Tensor.uniform([g.outputChannels], in: 0.5...2, using: &generator)
        let shift = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        // Blocks of 10 input channels: 0–9, 10–19, 20–29, 30–39 across parts of 17, 7 and 16.
        let smallBudget = 2 * 36 * g.outputChannels * 10
        for bounded in [false, true] {
            func workspace() -> Workspace {
                bounded ? Workspace(sharedColumnBudget: smallBudget, boundsWinogradScratch: true) : Workspace()
            }
            if bounded && runsByWinograd(g, fastPaths: true) {
                #expect(WinogradPlan(g, workspace: workspace()).kernelBlock == 10, "\(g): the blocks do not straddle the parts")
            }
            let expected = conv2d(concatenateChannels(parts), weight: w, bias: shift, geometry: g, workspace: workspace(),
                                  scale: scale, relu: true)
            let actual = conv2d(concatenating: parts, weight: w, bias: shift, geometry: g, workspace: workspace(),
                                scale: scale, relu: true)
            #expect(actual.scalars == expected.scalars, "\(g), bounded \(bounded): not the bits of the concatenation's convolution")
        }
    }
}

extension Tensor {
    /// Samples `range` of a batch, as a new tensor.
    func images(_ range: Range<Int>) -> Tensor {
        let per = shape.elementCount / shape.batch
        var sliced = shape
        sliced.dimensions[0] = range.count
        return Tensor(shape: sliced, scalars: Array(scalars[(range.lowerBound * per)..<(range.upperBound * per)]))
    }
}
