@testable import Segmentation
import SegmentationTestSupport
import Testing

/// The im2col + sgemm convolution against the direct six-loop reference
/// (Double accumulation) on awkward geometries, including shapes that take
/// each threading path: several output-row bands per image, one image split
/// over the workers, images dealt to workers with a leftover.
///
/// Tolerance: sgemm sums C·R·S Float32 products in blocked order; the error is
/// a few ulps of Σ|w·x| ≤ C·R·S · max|w| · max|x|. We allow 2e-6 · C·R·S of
/// that bound's scale (|w|, |x| ≤ 1) — ten or more ulps per term, while a wrong
/// tap moves an output by a whole term (~1e-1 here).
@Suite("Convolution")
struct ConvolutionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var geometry: ConvGeometry
        var bias: Bool
        var testDescription: String { geometry.description + (bias ? " +bias" : "") }
    }

    static func g(
        _ n: Int, _ c: Int, _ k: Int, _ h: Int, _ w: Int, kh: Int, kw: Int,
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)
    ) -> ConvGeometry {
        ConvGeometry(batch: n, inputChannels: c, outputChannels: k, inputHeight: h, inputWidth: w,
                     kernelHeight: kh, kernelWidth: kw, strideHeight: stride.0, strideWidth: stride.1,
                     paddingHeight: padding.0, paddingWidth: padding.1, dilationHeight: dilation.0, dilationWidth: dilation.1)
    }

    static let cases: [Case] = [
        // several bands per image (C·R·S = 576: bands of ⌈455/Q⌉ rows), batch 1 and 3
        .init(geometry: g(1, 64, 5, 31, 17, kh: 3, kw: 3, padding: (1, 1)), bias: true),
        .init(geometry: g(3, 64, 4, 61, 37, kh: 3, kw: 3, stride: (2, 2), padding: (1, 1)), bias: false),
        .init(geometry: g(2, 60, 3, 60, 11, kh: 3, kw: 3, padding: (2, 2), dilation: (2, 2)), bias: true),
        // one band, one image: im2col split over channels, sgemm split over workers
        .init(geometry: g(1, 7, 6, 9, 8, kh: 3, kw: 3, padding: (1, 1)), bias: true),
        // deep reduction (C·R·S ≥ 2048): whole images
        .init(geometry: g(3, 240, 3, 7, 6, kh: 3, kw: 3, padding: (4, 4), dilation: (4, 4)), bias: false),
        // deep reduction whose columns exceed the dealt budget: the workers share each image's
        .init(geometry: sharedColumns, bias: true),
        // rectangular and even kernels, asymmetric stride/padding/dilation
        .init(geometry: g(2, 3, 4, 10, 9, kh: 1, kw: 3, stride: (1, 2), padding: (0, 1)), bias: true),
        .init(geometry: g(2, 3, 2, 8, 11, kh: 2, kw: 2, stride: (2, 1)), bias: false),
        .init(geometry: g(1, 2, 3, 12, 10, kh: 5, kw: 3, stride: (3, 2), padding: (2, 1), dilation: (1, 3)), bias: true),
        // padding larger than the kernel reach: whole border rows/columns of zeros
        .init(geometry: g(2, 3, 2, 4, 5, kh: 3, kw: 3, padding: (3, 3)), bias: true),
        // pointwise fast path, batch 1 and 3, and a 1×1 stride-2 projection
        .init(geometry: g(1, 9, 5, 7, 9, kh: 1, kw: 1), bias: true),
        .init(geometry: g(3, 9, 5, 7, 9, kh: 1, kw: 1), bias: false),
        .init(geometry: g(3, 8, 6, 9, 7, kh: 1, kw: 1, stride: (2, 2)), bias: false),
        // the 7×7/2 stem on an odd image, and a 1×1 output
        .init(geometry: g(2, 3, 4, 17, 15, kh: 7, kw: 7, stride: (2, 2), padding: (3, 3)), bias: false),
        .init(geometry: g(2, 4, 3, 3, 3, kh: 3, kw: 3), bias: true),
    ]

    /// C·R·S = 4608 over 31×31 outputs: two workers' column matrices would
    /// pass `dealtColumnBudget` (K = 15 keeps Winograd out).
    static let sharedColumns = g(3, 512, 15, 31, 31, kh: 3, kw: 3, padding: (1, 1))

    /// The forward and backward of a layer past the budget hold one image's
    /// columns at a time, not one per worker (with two workers the dealt
    /// form would need twice this).
    @Test(.enabled(if: Parallelism.workerCount > 1, "one worker has nothing to share"))
    func largeColumnMatricesAreSharedByTheWorkers() {
        let g = Self.sharedColumns
        #expect(sharesImageColumns(g, workers: 2) && !sharesImageColumns(Self.cases[0].geometry, workers: 2))
        var generator = SplitMix64(seed: 13)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let workspace = Workspace()
        let y = conv2d(x, weight: w, geometry: g, workspace: workspace)
        var dx: Tensor? = .zeros(g.inputShape), dw: Tensor? = .zeros(g.weightShape), db: Tensor? = nil
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db, outputGradient: y, input: x, weight: w,
                       geometry: g, workspace: workspace)
        #expect(workspace.capacity <= g.columnRows * g.outputPlane, "scratch of \(workspace.capacity) scalars")
    }

    /// A shared column matrix past the workspace's budget is built block by
    /// block of input channels (forward with one image; backward, where the
    /// layer shares its columns, with every image; a layer that deals its
    /// images computes a leftover one whole, as it does the dealt ones, so
    /// that every image's gradient has the same bits on either path); the
    /// results match the reference, and the scratch holds one block.
    @Test(arguments: [
        (Self.sharedColumns, 66),
        (g(3, 7, 5, 13, 11, kh: 3, kw: 3, stride: (2, 2), padding: (1, 1)), 2),
        (g(3, 6, 4, 12, 9, kh: 3, kw: 2, padding: (3, 2), dilation: (3, 2)), 4),
    ])
    func sharedColumnsPastTheBudgetAreBuiltInChannelBlocks(_ g: ConvGeometry, blockChannels: Int) {
        let budget = blockChannels * g.kernelHeight * g.kernelWidth * g.outputPlane + 1
        #expect(sharedBlockChannels(g, budget: budget) == blockChannels && g.inputChannels % blockChannels != 0)
        var generator = SplitMix64(seed: 17)
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = Tensor.uniform([g.outputChannels], in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        let workspace = Workspace(sharedColumnBudget: budget)
        let scale = Float(g.columnRows)
        var one = g
        one.batch = 1
        let image = Tensor(shape: one.inputShape, scalars: Array(x.scalars.prefix(one.inputShape.elementCount)))
        expectClose(conv2d(image, weight: w, bias: b, geometry: one, workspace: workspace, fastPaths: false),
                    conv2dReference(image, weight: w, bias: b, geometry: one), absoluteTolerance: 2e-6 * scale, "forward \(one)")

        var dx: Tensor? = .zeros(g.inputShape), dw: Tensor? = .zeros(g.weightShape), db: Tensor? = .zeros([g.outputChannels])
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db, outputGradient: dy, input: x, weight: w,
                       geometry: g, workspace: workspace, fastPaths: false)
        let reference = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g)
        expectClose(dx!, reference.input, absoluteTolerance: 2e-6 * Float(g.outputChannels * g.kernelHeight * g.kernelWidth),
                    "input gradient \(g)")
        expectClose(dw!, reference.weight, absoluteTolerance: 2e-6 * Float(g.batch * g.outputPlane), "weight gradient \(g)")
        let dealtColumns = Parallelism.workerCount * g.columnRows * forwardBandRows(g) * g.outputWidth
        #expect(workspace.capacity <= max(budget, sharesImageColumns(g, workers: Parallelism.workerCount) ? 0 : dealtColumns)
                + g.weightShape.elementCount * Parallelism.workerCount, "scratch of \(workspace.capacity) scalars")
    }

    @Test func multiBandCasesReallyHaveSeveralBands() {
        for c in Self.cases.prefix(3) {
            #expect(forwardBandRows(c.geometry) < c.geometry.outputHeight, "\(c.geometry) has a single band")
        }
    }

    @Test(arguments: cases)
    func matchesReference(_ c: Case) {
        var generator = SplitMix64(seed: 11)
        let g = c.geometry
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let b = c.bias ? Tensor.uniform([g.outputChannels], in: -1...1, using: &generator) : nil
        let fast = conv2d(x, weight: w, bias: b, geometry: g)
        let reference = conv2dReference(x, weight: w, bias: b, geometry: g)
        expectClose(fast, reference, absoluteTolerance: 2e-6 * Float(g.inputChannels * g.kernelHeight * g.kernelWidth),
                    "\(g)")
    }

    @Test(arguments: cases)
    func backwardMatchesReference(_ c: Case) {
        var generator = SplitMix64(seed: 12)
        let g = c.geometry
        let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
        let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
        let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
        var dx: Tensor? = .zeros(g.inputShape), dw: Tensor? = .zeros(g.weightShape)
        var db: Tensor? = .zeros([g.outputChannels])
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db,
                       outputGradient: dy, input: x, weight: w, geometry: g)
        let reference = conv2dBackwardReference(outputGradient: dy, input: x, weight: w, geometry: g)
        // dX sums K·R·S terms; dW and db sum N·P·Q terms (same ulp argument as the forward).
        expectClose(dx!, reference.input, absoluteTolerance: 2e-6 * Float(g.outputChannels * g.kernelHeight * g.kernelWidth),
                    "input gradient \(g)")
        let reduction = Float(g.batch * g.outputPlane)
        expectClose(dw!, reference.weight, absoluteTolerance: 2e-6 * reduction, "weight gradient \(g)")
        expectClose(db!, reference.bias, absoluteTolerance: 2e-6 * reduction, "bias gradient \(g)")
        // Only the weight or only the input gradient: the other paths of the kernel.
        var onlyDx: Tensor? = .zeros(g.inputShape), noDw: Tensor? = nil, noDb: Tensor? = nil
        conv2dBackward(inputGradient: &onlyDx, weightGradient: &noDw, biasGradient: &noDb,
                       outputGradient: dy, input: x, weight: w, geometry: g)
        #expect(onlyDx == dx)
        var noDx: Tensor? = nil, onlyDw: Tensor? = .zeros(g.weightShape)
        conv2dBackward(inputGradient: &noDx, weightGradient: &onlyDw, biasGradient: &noDb,
                       outputGradient: dy, input: x, weight: w, geometry: g)
        #expect(onlyDw == dw)
    }

    @Test func outputSizeArithmetic() {
        // (H + 2p − d(R−1) − 1)/s + 1, as torch.nn.Conv2d documents
        #expect(Self.g(1, 1, 1, 240, 240, kh: 7, kw: 7, stride: (2, 2), padding: (3, 3)).outputHeight == 120)
        #expect(Self.g(1, 1, 1, 30, 30, kh: 3, kw: 3, padding: (4, 4), dilation: (4, 4)).outputHeight == 30)
        #expect(Self.g(1, 1, 1, 61, 61, kh: 3, kw: 3, stride: (2, 2), padding: (1, 1)).outputHeight == 31)
        #expect(Self.g(1, 1, 1, 8, 8, kh: 1, kw: 1, stride: (2, 2)).outputWidth == 4)
    }

    @Test func workspaceIsReusedAcrossShapes() {
        // A workspace shared by layers of different sizes gives the same results as fresh ones.
        let workspace = Workspace()
        var generator = SplitMix64(seed: 3)
        for c in Self.cases.prefix(6) {
            let g = c.geometry
            let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
            let w = Tensor.uniform(g.weightShape, in: -1...1, using: &generator)
            #expect(conv2d(x, weight: w, geometry: g, workspace: workspace) == conv2d(x, weight: w, geometry: g))
        }
    }
}
