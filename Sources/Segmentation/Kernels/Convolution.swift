import Foundation

// 2-D convolution by im2col + sgemm, forward and backward, and the choice of
// the faster algorithms where they apply (FastConvolutions).
//
// N batch, C input channels, K output channels, H×W input, R×S kernel,
// P×Q output. Per image:
//   forward      W[K, C·R·S] × cols[C·R·S, P·Q]      → Y[K, P·Q]
//   weight grad  dY[K, P·Q] × colsᵀ[P·Q, C·R·S]      → dW[K, C·R·S]   (accumulated)
//   data grad    Wᵀ[C·R·S, K] × dY[K, P·Q]           → dcols[C·R·S, P·Q], col2im → dX
// A 1×1 stride-1 unpadded convolution skips im2col: the image [C, H·W] is its
// own column matrix, and the data gradient is one sgemm straight into dX.
//
// Threads: with N ≥ 2, images are dealt to the workers, each running im2col
// and single-threaded sgemm on its own scratch; leftover images (N not a
// multiple of the worker count), and all images of a layer whose columns are
// too large to deal (`sharesImageColumns`), split their im2col over channels
// and their sgemm over the workers (BLAS.parallelSgemm), in blocks of input
// channels when one image's columns pass the workspace's budget
// (`sharedBlockChannels`). Results are identical either way up to sgemm's
// summation order within one product.

/// Where the faster convolution algorithms (Winograd, padding-tap skipping)
/// run, from `SEGMENTATION_FAST_CONV`: unset: inference only; `training`:
/// inference and training; `0`: nowhere, everything by im2col + sgemm
/// (benchmarks compare the two in one build this way).
///
/// Training keeps im2col by default. The fast paths give every image the
/// same bits in any batch (tested), but their rounding moves the training
/// trajectory, and on SPEC §10's data-parallel equivalence test (N workers
/// within 1e-4 of one worker after 3 SGD steps, a small network at
/// initialization) the summation-order differences between the splits then
/// grow past the bound. Measured with tap skipping alone: 5e-7 of the whole
/// change after one step, as with im2col, but 2e-4 after three (im2col:
/// 3e-6). The bound is a matter of that trajectory's conditioning, not of
/// the algorithm (a variant of the test on smooth images exceeds it with
/// im2col too, 1.4e-2), but it is the contract.
public enum FastConvolutions {
    public static func isEnabled(for mode: Mode) -> Bool {
        switch setting {
        case "0", "off": false
        case "training", "all": true
        default: mode == .inference
        }
    }

    private static let setting = ProcessInfo.processInfo.environment["SEGMENTATION_FAST_CONV"] ?? ""
}

/// Output rows per band in the forward: the band's column matrix
/// [C·R·S, rows·Q] stays near 1 MB, so im2col writes it into the cache and
/// sgemm reads it from there, instead of a round trip through DRAM per image.
/// Layers with a deep reduction (C·R·S ≥ 2048) already hide im2col behind
/// sgemm and keep whole images, which is what sgemm prefers.
func forwardBandRows(_ g: ConvGeometry) -> Int {
    if g.isPointwise || g.columnRows >= 2048 { return g.outputHeight }
    let targetColumns = max(384, (1 << 18) / g.columnRows)
    return min(g.outputHeight, max(1, (targetColumns + g.outputWidth - 1) / g.outputWidth))
}

/// Whether the workers share one image's column matrix at a time (im2col
/// split over channels, sgemm split over the workers) instead of each
/// filling its own for the images dealt to it. Dealing needs a band's
/// columns per worker, and a deep layer keeps whole images in one band: for
/// FCN's 3×3 2048 → 512 head at crop 240 that is 66 MB per worker, the
/// largest scratch of a training step. Past `dealtColumnBudget` scalars in
/// all, the shared form's one image is cheaper in memory at no cost in
/// speed (these GEMMs are large enough to split well).
/// Only layers that keep whole images in one band share: for banded layers
/// one image's columns would be more than the workers' bands together.
func sharesImageColumns(_ g: ConvGeometry, workers: Int) -> Bool {
    !g.isPointwise && workers > 1 && forwardBandRows(g) == g.outputHeight
        && workers * g.columnRows * g.outputPlane > dealtColumnBudget
}

/// Scalars of column matrices (32 MB) the workers may fill side by side.
let dealtColumnBudget = 8 << 20

/// Forward: `output[N, K, P, Q] = conv(input[N, C, H, W], weight[K, C, R, S]) + bias[K]`.
/// Overwrites `output`.
///
/// With `fastPaths`, 3×3 stride-1 convolutions that gain from it run as
/// Winograd F(4×4, 3×3) (Kernels/Winograd.swift) and those that mostly read
/// padding skip it (Kernels/PaddingTaps.swift); the rest by im2col + sgemm:
/// the work is cut into bands of output rows (all P rows for deep or
/// pointwise layers). When there are at least as many bands as workers, each
/// worker takes a contiguous run of (image, band) items and does im2col +
/// single-threaded sgemm on its own scratch; otherwise (one image, one band)
/// im2col splits over channels and sgemm over the workers.
func conv2dForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace, fastPaths: Bool = true
) {
    if runsByWinograd(g, fastPaths: fastPaths) {
        winogradForward(output: output, input: input, weight: weight, epilogue: epilogue, geometry: g, workspace: workspace)
    } else if fastPaths && PaddingTaps.applies(to: g) {
        paddingSkippingForward(output: output, input: input, weight: weight, epilogue: epilogue, geometry: g, workspace: workspace)
    } else {
        conv2dForwardIm2col(output: output, input: input, weight: weight, epilogue: epilogue, geometry: g, workspace: workspace)
    }
}

/// Whether the forward of `g` runs by Winograd: of the fast paths that
/// apply, the one that should take less time. A multiply-add left to
/// Winograd costs about `winogradCostPerWork` times one left to tap
/// skipping, whose GEMMs are wide and read the input where it lies.
func runsByWinograd(_ g: ConvGeometry, fastPaths: Bool) -> Bool {
    guard fastPaths && Winograd.applies(to: g) else { return false }
    return !PaddingTaps.applies(to: g) || Winograd.workFraction(g) * winogradCostPerWork <= PaddingTaps.validFraction(g)
}

/// Time per multiply-add left, Winograd's over tap skipping's. Measured on
/// DeepLabV3's ASPP at 480² (`segment bench conv --batch 1 --inference`):
/// Winograd 224 (rate 24) and 247 (rate 12) ms per unit of work fraction,
/// tap skipping 191 (rate 24) and 200 (rate 36), so 1.17–1.23. The lower
/// end sends rate 24 (Winograd 0.49 of the direct work, tap skipping 0.54)
/// to tap skipping, 103 against 110 ms, and leaves small maps, whose tap
/// skipping GEMMs are narrow, to Winograd where it does clearly less work
/// (a 3×3 on a 5×5 map: 0.64 against 0.75).
let winogradCostPerWork = 1.15

/// The forward by im2col + sgemm, for every geometry.
func conv2dForwardIm2col(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace
) {
    let (K, CRS, P, Q, PQ) = (g.outputChannels, g.columnRows, g.outputHeight, g.outputWidth, g.outputPlane)
    let imageSize = g.inputChannels * g.inputPlane
    let outputSize = K * PQ
    let bandRows = forwardBandRows(g)
    let bands = (P + bandRows - 1) / bandRows
    let items = g.batch * bands
    let workers = Parallelism.workerCount
    let output = SendablePointer(output)
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let weight = SendablePointer(UnsafeMutablePointer(mutating: weight))

    if items >= workers && !sharesImageColumns(g, workers: workers) {
        let slotSize = g.isPointwise ? 0 : CRS * bandRows * Q
        let scratch = SendablePointer(workspace.scratch(max(1, min(workers, items) * slotSize)))
        parallelChunks(items, chunks: workers) { slot, range in
            let columns = scratch.base + slot * slotSize
            for item in range {
                let image = item / bands
                let rows = (item % bands) * bandRows ..< min(P, (item % bands + 1) * bandRows)
                let x = input.base + image * imageSize
                let y = output.base + image * outputSize + rows.lowerBound * Q
                let n = rows.count * Q
                let cols: UnsafePointer<Float>
                if g.isPointwise {
                    cols = UnsafePointer(x + rows.lowerBound * Q)
                } else {
                    im2col(columns: columns, image: x, geometry: g, channels: 0..<g.inputChannels, outputRows: rows)
                    cols = UnsafePointer(columns)
                }
                // W[K, C·R·S] × cols[C·R·S, band] → Y[K, band] (row stride P·Q)
                BLAS.sgemm(.none, .none, m: K, n: n, k: CRS, a: weight.base, lda: CRS,
                           b: cols, ldb: g.isPointwise ? PQ : n, beta: 0, c: y, ldc: PQ)
                epilogue.apply(y, residualBase: image * outputSize + rows.lowerBound * Q, channels: 0..<K,
                               count: n, rowStride: PQ)
            }
        }
        return
    }
    // A single image in a single band, or columns too large to deal: every
    // worker on each image, block by block of input channels past the
    // budget (one block for most layers).
    let blockChannels = g.isPointwise ? g.inputChannels : sharedBlockChannels(g, budget: workspace.sharedColumnBudget)
    let RS = g.kernelHeight * g.kernelWidth
    let scratch = SendablePointer(workspace.scratch(g.isPointwise ? 1 : blockChannels * RS * PQ))
    for image in 0..<g.batch {
        let x = input.base + image * imageSize
        let y = output.base + image * outputSize
        for first in stride(from: 0, to: g.inputChannels, by: blockChannels) {
            let channels = first..<min(g.inputChannels, first + blockChannels)
            let block = g.onInputChannels(channels.count)
            let blockX = SendablePointer(x + first * g.inputPlane)
            if !g.isPointwise {
                parallelFor(channels.count) { channels in
                    im2col(columns: scratch.base, image: blockX.base, geometry: block, channels: channels)
                }
            }
            let cols = g.isPointwise ? UnsafePointer(x) : UnsafePointer(scratch.base)
            // W[K, block·R·S] × cols[block·R·S, P·Q] → Y[K, P·Q] (summed over the blocks)
            BLAS.parallelSgemm(.none, .none, m: K, n: PQ, k: channels.count * RS, a: weight.base + first * RS, lda: CRS,
                               b: cols, ldb: PQ, beta: first == 0 ? 0 : 1, c: y, ldc: PQ)
        }
        if !epilogue.isEmpty {
            parallelFor(K, minimumChunk: max(1, 65536 / PQ)) { channels in
                epilogue.apply(y, residualBase: image * outputSize, channels: channels, count: PQ, rowStride: PQ)
            }
        }
    }
}

/// Input channels per block where all workers share one image's column
/// matrix: all of them, unless the columns pass the workspace's
/// `sharedColumnBudget` (the deep layers of the heads: FCN's 3×3 2048 → 512
/// at crop 240 has 66 MB of columns per image, PSP's 4096 → 512 133 MB,
/// each a training step's largest scratch). Blocks of channels, whole
/// planes, rather than bands of output rows: each block's products keep the
/// whole reduction over P·Q (weight gradient) or K (data gradient) and
/// write their own columns of dW once per image, and the forward packs each
/// block of the weights once per image. Bands of rows made the weight
/// gradient sum a band at a time and rewrite all of dW per band (PSP's
/// head: 75 MB five times an image, 4–5 % of its training step).
func sharedBlockChannels(_ g: ConvGeometry, budget: Int) -> Int {
    min(g.inputChannels, max(1, budget / max(1, g.kernelHeight * g.kernelWidth * g.outputPlane)))
}

/// Input channels per block of the backward of a layer that shares its
/// columns: a block's columns [block·R·S, P·Q] and, for a batch of two, the
/// second image's weight-gradient term [K, block·R·S] within `budget`. The
/// same for every batch, so that each image's products have the same shape
/// whatever the batch (split-invariant gradients).
func gradientBlockChannels(_ g: ConvGeometry, budget: Int) -> Int {
    min(g.inputChannels, max(1, budget / max(1, g.kernelHeight * g.kernelWidth * (g.outputPlane + g.outputChannels))))
}


/// Backward. Adds into each gradient that is not nil:
/// `inputGradient[N, C, H, W]`, `weightGradient[K, C, R, S]`, `biasGradient[K]`.
///
/// The weight and bias gradients are sums over the images whose bits do not
/// depend on how the batch is split (over lanes, threads, or ranks; tested):
/// each image's term is computed the same way in any batch, and the terms
/// are summed exactly and rounded once (ExactSum.swift), provided the
/// gradients start at zero. With `weightGradientLow` and `biasGradientLow`
/// (a data-parallel rank's), the part of the sum the rounding dropped is
/// added there, for the all-reduce to round once.
func conv2dBackward(
    inputGradient: UnsafeMutablePointer<Float>?, weightGradient: UnsafeMutablePointer<Float>?,
    biasGradient: UnsafeMutablePointer<Float>?,
    outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    geometry g: ConvGeometry, workspace: Workspace, fastPaths: Bool = true,
    weightGradientLow: UnsafeMutablePointer<Float>? = nil, biasGradientLow: UnsafeMutablePointer<Float>? = nil
) {
    if fastPaths, let crop = PaddingTaps.centredValidTaps(g) {
        croppedKernelBackward(inputGradient: inputGradient, weightGradient: weightGradient, biasGradient: biasGradient,
                              outputGradient: outputGradient, input: input, weight: weight, geometry: g, crop: crop,
                              workspace: workspace, weightGradientLow: weightGradientLow, biasGradientLow: biasGradientLow)
        return
    }
    if fastPaths, Winograd.applies(to: g) {
        // Each gradient Winograd computes leaves the rest to im2col.
        var inputGradient = inputGradient, weightGradient = weightGradient
        if let dX = inputGradient, winogradDataGradientGeometry(g) != nil {
            winogradDataGradient(inputGradient: dX, outputGradient: outputGradient, weight: weight,
                                 geometry: g, workspace: workspace)
            inputGradient = nil
        }
        if let dW = weightGradient {
            winogradWeightGradient(weightGradient: dW, outputGradient: outputGradient, input: input,
                                   geometry: g, workspace: workspace, low: weightGradientLow)
            weightGradient = nil
        }
        if inputGradient == nil && weightGradient == nil && biasGradient == nil { return }
        conv2dBackward(inputGradient: inputGradient, weightGradient: nil, biasGradient: biasGradient,
                       outputGradient: outputGradient, input: input, weight: weight, geometry: g, workspace: workspace,
                       fastPaths: false, biasGradientLow: biasGradientLow)
        return
    }
    let (K, CRS, PQ) = (g.outputChannels, g.columnRows, g.outputPlane)
    let imageSize = g.inputChannels * g.inputPlane
    let outputSize = K * PQ
    let weightSize = K * CRS
    let lanes = min(Parallelism.workerCount, g.batch)
    // Whether the layer's images share their columns is a property of the
    // layer, not of the batch: a batch of one computes its image as a larger
    // batch computes any, and only layers that share build blocks of channels.
    let sharesColumns = sharesImageColumns(g, workers: max(2, Parallelism.workerCount))
    let dealt = lanes >= 2 && !sharesColumns ? (g.batch / lanes) * lanes : 0
    let (P, Q) = (g.outputHeight, g.outputWidth)
    let bandRows = forwardBandRows(g)
    let bands = (P + bandRows - 1) / bandRows
    guard weightGradient != nil || inputGradient != nil else {
        addBiasGradient(biasGradient, low: biasGradientLow, outputGradient: outputGradient, geometry: g)
        return
    }
    // The weight gradient is a sum of each image's own term: its bands'
    // products in order, the same on every path and in any batch. The terms
    // are summed exactly (ExactSum.swift). Past two terms, or when a rank
    // hands its sum on in two parts, they go into Double sums, which start
    // from dW's content: each term is computed in dW's own memory (and in
    // the other lanes' partials) and added to the sums, which are rounded
    // into dW at the end. With at most two, the first term goes straight
    // into dW and the second is added to it.
    let sumsInDouble = weightGradient != nil && (g.batch > 2 || (weightGradientLow != nil && g.batch > 1))
    // Leftover images (and all images of a layer that shares its columns)
    // take one image at a time on all workers: band by band as a lane does
    // (banded and pointwise layers), or over whole planes for one-band
    // layers, in blocks of input channels where the layer shares its columns.
    let sharedByBlocks = !g.isPointwise && bands == 1
    let needsColumns = !g.isPointwise
    let columnsSize = needsColumns ? CRS * bandRows * Q : 0
    let blockChannels = sharedByBlocks && sharesColumns
        ? gradientBlockChannels(g, budget: workspace.sharedColumnBudget) : g.inputChannels
    let RS = g.kernelHeight * g.kernelWidth
    let blockRows = blockChannels * RS
    let shared = dealt..<g.batch
    let sharedColumns = needsColumns && !shared.isEmpty ? (sharedByBlocks ? blockRows * PQ : columnsSize) : 0
    let columnsTotal = max(dealt > 0 ? lanes * columnsSize : 0, sharedColumns)
    // Float terms: the lanes' but lane 0's (which uses dW), and, with two
    // terms, the second image's when it is shared.
    let laneTerms = weightGradient != nil && dealt > 0 ? lanes - 1 : 0
    let sharedTermSize = !sumsInDouble && weightGradient != nil && shared.upperBound > 1 && !shared.isEmpty
        ? (sharedByBlocks ? K * blockRows : weightSize) : 0
    let scratchBase = workspace.scratch(max(1, columnsTotal + laneTerms * weightSize + sharedTermSize))
    let scratch = SendablePointer(scratchBase)
    let partials = SendablePointer(scratchBase + columnsTotal)
    let term = SendablePointer(scratchBase + columnsTotal + laneTerms * weightSize)
    // The Double sums: of the whole dW, or of one block of its columns at a
    // time when every image is shared by blocks.
    let sumsPerBlock = sharedByBlocks && dealt == 0
    let sums = sumsInDouble ? SendablePointer(workspace.sums(sumsPerBlock ? K * blockRows : weightSize)) : nil
    let dY = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let weight = SendablePointer(UnsafeMutablePointer(mutating: weight))
    let dX = inputGradient.map { SendablePointer($0) }
    let dW = weightGradient.map { SendablePointer($0) }
    let dWLow = weightGradientLow.map { FloatRows($0, stride: CRS) }
    if let sums, let dW, !sumsPerBlock {
        accumulateExactly(sums.base, terms: [FloatRows(dW.base)], rows: 1, width: weightSize, first: true)
    }

    /// One image's backward, band by band through `columns`: its weight-gradient
    /// term into `target` (added to the target's content with `addsToTarget`,
    /// else from zero) and its data gradient into dX. A lane calls it inside
    /// its parallel region, where the loops and products below run serially;
    /// a shared image calls it outside one, where they split over the workers.
    /// The products are the same either way (`parallelSgemm` splits at
    /// multiples of 64), so the image gets the same bits.
    func imageByBands(_ image: Int, columns: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>?,
                      addsToTarget: Bool) {
        let x = SendablePointer(input.base + image * imageSize), columns = SendablePointer(columns)
        for band in 0..<bands {
            let rows = band * bandRows ..< min(P, (band + 1) * bandRows)
            let n = rows.count * Q
            let dy = dY.base + image * outputSize + rows.lowerBound * Q
            let cols: UnsafePointer<Float>
            if g.isPointwise {
                cols = UnsafePointer(x.base)
            } else {
                parallelFor(g.inputChannels) { channels in
                    im2col(columns: columns.base, image: x.base, geometry: g, channels: channels, outputRows: rows)
                }
                cols = UnsafePointer(columns.base)
            }
            if let target {
                // dY[K, band] × colsᵀ[band, C·R·S] → dW[K, C·R·S] (dY row stride P·Q)
                BLAS.parallelSgemm(.none, .transposed, m: K, n: CRS, k: n, a: dy, lda: PQ,
                                   b: cols, ldb: g.isPointwise ? PQ : n, beta: band == 0 && !addsToTarget ? 0 : 1,
                                   c: target, ldc: CRS)
            }
            guard let dX else { continue }
            let dx = SendablePointer(dX.base + image * imageSize)
            if g.isPointwise {
                // Wᵀ[C, K] × dY[K, H·W] → dX[C, H·W] (accumulated)
                BLAS.parallelSgemm(.transposed, .none, m: CRS, n: PQ, k: K, a: weight.base, lda: CRS,
                                   b: dy, ldb: PQ, beta: 1, c: dx.base, ldc: PQ)
            } else {
                // Wᵀ[C·R·S, K] × dY[K, band] → dcols[C·R·S, band], then col2im into dX
                BLAS.parallelSgemm(.transposed, .none, m: CRS, n: n, k: K, a: weight.base, lda: CRS,
                                   b: dy, ldb: PQ, beta: 0, c: columns.base, ldc: n)
                parallelFor(g.inputChannels) { channels in
                    col2imAccumulate(image: dx.base, columns: columns.base, geometry: g, channels: channels, outputRows: rows)
                }
            }
        }
    }

    if dealt > 0 {
        // Each worker owns whole images (col2im of neighbouring bands overlaps
        // in dX) and walks their bands in order, so the band's columns stay in
        // cache. One image per lane per round.
        for round in stride(from: 0, to: dealt, by: lanes) {
            parallelFor(lanes, chunks: lanes) { laneRange in
                for lane in laneRange {
                    // Lane 0 adds its term to dW's content unless the Double sums hold that.
                    imageByBands(round + lane, columns: scratch.base + lane * columnsSize,
                                 target: dW.map { lane == 0 ? $0.base : partials.base + (lane - 1) * weightSize },
                                 addsToTarget: lane == 0 && !sumsInDouble)
                }
            }
            guard let dW else { continue }
            let others = (0..<(lanes - 1)).map { FloatRows(partials.base + $0 * weightSize) }
            if let sums {
                accumulateExactly(sums.base, terms: [FloatRows(dW.base)] + others, rows: 1, width: weightSize, first: false)
            } else {
                addSecondTerm(others[0], into: FloatRows(dW.base), rows: 1, width: weightSize)
            }
        }
    }
    // The shared images, one at a time on all workers.
    if sharedByBlocks {
        // Whole planes, in blocks of input channels: each product reduces
        // over the whole of P·Q (dW) or K (dX), as a lane's one band does.
        for first in stride(from: 0, to: g.inputChannels, by: blockChannels) {
            let channels = first..<min(g.inputChannels, first + blockChannels)
            let block = g.onInputChannels(channels.count)
            let rows = channels.count * RS
            let blockOfDW = dW.map { FloatRows($0.base + first * RS, stride: CRS) }
            // The block's sums: its own, or its columns of the whole dW's.
            let blockSums = sums.map { sumsPerBlock ? $0.base : $0.base + first * RS }
            let sumStride = sumsPerBlock ? rows : CRS
            if let blockSums, let blockOfDW, sumsPerBlock {
                accumulateExactly(blockSums, sumStride: sumStride, terms: [blockOfDW], rows: K, width: rows, first: true)
            }
            for image in shared {
                let x = input.base + image * imageSize
                let dy = dY.base + image * outputSize
                let blockX = SendablePointer(x + first * g.inputPlane)
                if let blockOfDW {
                    parallelFor(channels.count) { channels in
                        im2col(columns: scratch.base, image: blockX.base, geometry: block, channels: channels)
                    }
                    // dY[K, P·Q] × colsᵀ[P·Q, block·R·S] → dW[K, block·R·S] (row stride C·R·S), or the second term
                    let isSecondTerm = !sumsInDouble && image > 0
                    let target = isSecondTerm ? FloatRows(term.base, stride: rows) : blockOfDW
                    BLAS.parallelSgemm(.none, .transposed, m: K, n: rows, k: PQ, a: dy, lda: PQ,
                                       b: scratch.base, ldb: PQ, beta: sumsInDouble || isSecondTerm ? 0 : 1,
                                       c: target.base, ldc: target.stride)
                    if let blockSums {
                        accumulateExactly(blockSums, sumStride: sumStride, terms: [blockOfDW], rows: K, width: rows, first: false)
                    } else if isSecondTerm {
                        addSecondTerm(target, into: blockOfDW, rows: K, width: rows)
                    }
                }
                guard let dX else { continue }
                // W[K, block·R·S]ᵀ × dY[K, P·Q] → dcols[block·R·S, P·Q], then col2im into the block's channels of dX
                BLAS.parallelSgemm(.transposed, .none, m: rows, n: PQ, k: K, a: weight.base + first * RS, lda: CRS,
                                   b: dy, ldb: PQ, beta: 0, c: scratch.base, ldc: PQ)
                let dx = SendablePointer(dX.base + image * imageSize + first * g.inputPlane)
                parallelFor(channels.count) { channels in
                    col2imAccumulate(image: dx.base, columns: scratch.base, geometry: block, channels: channels)
                }
            }
            if let blockSums, let blockOfDW, sumsPerBlock {
                storeRounded(blockSums, sumStride: sumStride, into: blockOfDW,
                             low: dWLow.map { FloatRows($0.base + first * RS, stride: CRS) }, rows: K, width: rows)
            }
        }
    } else {
        // Band by band, as a lane computes an image, each step split over the workers.
        for image in shared {
            let isSecondTerm = !sumsInDouble && image > 0
            imageByBands(image, columns: scratch.base, target: dW.map { isSecondTerm ? term.base : $0.base },
                         addsToTarget: !sumsInDouble && !isSecondTerm)
            guard let dW else { continue }
            if let sums {
                accumulateExactly(sums.base, terms: [FloatRows(dW.base)], rows: 1, width: weightSize, first: false)
            } else if isSecondTerm {
                addSecondTerm(FloatRows(term.base), into: FloatRows(dW.base), rows: 1, width: weightSize)
            }
        }
    }
    if let sums, let dW, !sumsPerBlock {
        storeRounded(sums.base, into: FloatRows(dW.base, stride: CRS), low: dWLow, rows: K, width: CRS)
    }
    addBiasGradient(biasGradient, low: biasGradientLow, outputGradient: outputGradient, geometry: g)
}

/// db[k] += Σ over images and pixels of dY[n, k]: each image's sum in Float,
/// the images' in Double, rounded once (ExactSum.swift); with `low`, the
/// rounding's remainder goes there.
private func addBiasGradient(_ biasGradient: UnsafeMutablePointer<Float>?, low: UnsafeMutablePointer<Float>?,
                             outputGradient: UnsafePointer<Float>, geometry g: ConvGeometry) {
    guard let biasGradient else { return }
    let (K, PQ) = (g.outputChannels, g.outputPlane)
    let db = SendablePointer(biasGradient)
    let low = low.map { SendablePointer($0) }
    let dY = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    parallelFor(K, minimumChunk: max(1, 65536 / max(1, PQ * g.batch))) { channels in
        for k in channels {
            var total = 0.0
            for image in 0..<g.batch { total += Double(relaxedSum(dY.base + (image * K + k) * PQ, count: PQ)) }
            if let low {
                let (high, rest) = splitExactSum(total)
                db.base[k] += high
                low.base[k] += rest
            } else {
                db.base[k] += Float(total)
            }
        }
    }
}

/// The slow truth: a direct six-loop convolution with Double accumulation.
/// Tests compare the im2col path against it on awkward shapes.
func conv2dReference(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: ConvGeometry
) {
    let (C, H, W, K, P, Q, R, S) = (
        g.inputChannels, g.inputHeight, g.inputWidth, g.outputChannels,
        g.outputHeight, g.outputWidth, g.kernelHeight, g.kernelWidth
    )
    for n in 0..<g.batch {
        for k in 0..<K {
            for p in 0..<P {
                for q in 0..<Q {
                    var total = Double(bias?[k] ?? 0)
                    for c in 0..<C {
                        for r in 0..<R {
                            let ih = p * g.strideHeight - g.paddingHeight + r * g.dilationHeight
                            if ih < 0 || ih >= H { continue }
                            for s in 0..<S {
                                let iw = q * g.strideWidth - g.paddingWidth + s * g.dilationWidth
                                if iw < 0 || iw >= W { continue }
                                total += Double(input[((n * C + c) * H + ih) * W + iw])
                                    * Double(weight[((k * C + c) * R + r) * S + s])
                            }
                        }
                    }
                    output[((n * K + k) * P + p) * Q + q] = Float(total)
                }
            }
        }
    }
}

/// The slow truth of the backward: direct loops, Double accumulation,
/// overwriting (not accumulating) `inputGradient`, `weightGradient`, `biasGradient`.
func conv2dBackwardReference(
    inputGradient: UnsafeMutablePointer<Float>, weightGradient: UnsafeMutablePointer<Float>,
    biasGradient: UnsafeMutablePointer<Float>,
    outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    geometry g: ConvGeometry
) {
    let (C, H, W, K, P, Q, R, S) = (
        g.inputChannels, g.inputHeight, g.inputWidth, g.outputChannels,
        g.outputHeight, g.outputWidth, g.kernelHeight, g.kernelWidth
    )
    var dx = [Double](repeating: 0, count: g.batch * C * H * W)
    var dw = [Double](repeating: 0, count: K * C * R * S)
    var db = [Double](repeating: 0, count: K)
    for n in 0..<g.batch {
        for k in 0..<K {
            for p in 0..<P {
                for q in 0..<Q {
                    let dy = Double(outputGradient[((n * K + k) * P + p) * Q + q])
                    db[k] += dy
                    for c in 0..<C {
                        for r in 0..<R {
                            let ih = p * g.strideHeight - g.paddingHeight + r * g.dilationHeight
                            if ih < 0 || ih >= H { continue }
                            for s in 0..<S {
                                let iw = q * g.strideWidth - g.paddingWidth + s * g.dilationWidth
                                if iw < 0 || iw >= W { continue }
                                let xi = ((n * C + c) * H + ih) * W + iw, wi = ((k * C + c) * R + r) * S + s
                                dx[xi] += dy * Double(weight[wi])
                                dw[wi] += dy * Double(input[xi])
                            }
                        }
                    }
                }
            }
        }
    }
    for i in dx.indices { inputGradient[i] = Float(dx[i]) }
    for i in dw.indices { weightGradient[i] = Float(dw[i]) }
    for i in db.indices { biasGradient[i] = Float(db[i]) }
}

/// The direct-loop reference of `conv2dBackward` for tests: returns fresh
/// (input, weight, bias) gradients.
public func conv2dBackwardReference(
    outputGradient: Tensor, input: Tensor, weight: Tensor, geometry: ConvGeometry
) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    var dx = Tensor.zeros(geometry.inputShape), dw = Tensor.zeros(geometry.weightShape)
    var db = Tensor.zeros([geometry.outputChannels])
    dx.withMutablePointer { dxp in dw.withMutablePointer { dwp in db.withMutablePointer { dbp in
        outputGradient.withPointer { dy in input.withPointer { x in weight.withPointer { w in
            conv2dBackwardReference(inputGradient: dxp, weightGradient: dwp, biasGradient: dbp,
                                    outputGradient: dy, input: x, weight: w, geometry: geometry)
        } } }
    } } }
    return (dx, dw, db)
}

// MARK: - Tensor API

/// `conv(input[N, C, H, W], weight[K, C, R, S]) + bias[K]` → `[N, K, P, Q]`,
/// or with an epilogue fused into the pass that writes the output
/// (`ConvolutionEpilogue`): `max(conv·scale[k] + bias[k] + residual, 0)`,
/// the ReLU with `relu`.
/// With `fastPaths`, 3×3 stride-1 convolutions that gain from it run as
/// Winograd F(4×4, 3×3) (`Winograd.applies(to:)`), and stride-1 ones that
/// mostly read padding skip those taps (`PaddingTaps.applies(to:)`);
/// otherwise im2col + sgemm.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil,
    geometry: ConvGeometry, workspace: Workspace = Workspace(), fastPaths: Bool = true,
    scale: Tensor? = nil, residual: Tensor? = nil, relu: Bool = false
) -> Tensor {
    precondition(input.shape == geometry.inputShape, "conv2d input \(input.shape) ≠ \(geometry.inputShape) for \(geometry)")
    precondition(residual == nil || residual!.shape == geometry.outputShape, "conv2d residual must be \(geometry.outputShape)")
    checkConvolutionArguments(weight: weight, bias: bias, scale: scale, geometry: geometry)
    return Tensor(shape: geometry.outputShape) { y in
        input.withPointer { x in
            weight.withPointer { w in
                bias.withPointerIfPresent { b in
                    scale.withPointerIfPresent { a in
                        residual.withPointerIfPresent { r in
                            conv2dForward(output: y.baseAddress!, input: x, weight: w,
                                          epilogue: ConvolutionEpilogue(scale: a, shift: b, residual: r, relu: relu),
                                          geometry: geometry, workspace: workspace, fastPaths: fastPaths)
                        }
                    }
                }
            }
        }
    }
}

/// `conv2d` of the concatenation of `parts` along channels ([N, Cᵢ, H, W]
/// each, `geometry` for their sum), without building it when the
/// convolution runs by Winograd, which reads each part's planes where they
/// are; other paths get the concatenation. The bits are those of `conv2d`
/// on the concatenation.
public func conv2d(
    concatenating parts: [Tensor], weight: Tensor, bias: Tensor? = nil,
    geometry: ConvGeometry, workspace: Workspace = Workspace(), fastPaths: Bool = true,
    scale: Tensor? = nil, relu: Bool = false
) -> Tensor {
    let first = parts[0].shape
    precondition(parts.allSatisfy { $0.shape.rank == 4 && $0.shape.batch == first.batch
        && $0.shape.height == first.height && $0.shape.width == first.width }
        && parts.map(\.shape.channels).reduce(0, +) == geometry.inputChannels,
        "conv2d parts \(parts.map(\.shape)) are not the channels of \(geometry.inputShape)")
    guard runsByWinograd(geometry, fastPaths: fastPaths) else {
        return conv2d(concatenateChannels(parts), weight: weight, bias: bias, geometry: geometry, workspace: workspace,
                      fastPaths: fastPaths, scale: scale, relu: relu)
    }
    checkConvolutionArguments(weight: weight, bias: bias, scale: scale, geometry: geometry)
    return Tensor(shape: geometry.outputShape) { y in
        withPointers(parts) { pointers in
            let planes = ChannelPlanes(parts: zip(pointers, parts).map { ($0, $1.shape.channels) }, plane: geometry.inputPlane)
            weight.withPointer { w in
                bias.withPointerIfPresent { b in
                    scale.withPointerIfPresent { a in
                        winogradForward(output: y.baseAddress!, input: planes, weight: w,
                                        epilogue: ConvolutionEpilogue(scale: a, shift: b, relu: relu),
                                        geometry: geometry, workspace: workspace)
                    }
                }
            }
        }
    }
}

/// `conv2d(concatenating: parts + [constant resized to the parts' size])`
/// where `constant` is [N, C', 1, 1]: a one-pixel map resized to every
/// pixel (bilinear resizing of one pixel repeats it), concatenated last, as
/// DeepLabV3's ASPP does with its image-pooling branch. A pointwise
/// convolution neither builds the concatenation nor repeats the constant:
/// the constant's share of the output is one value per image and output
/// channel (W[:, constant's channels] × constant), which starts each
/// image's output, and one GEMM per part adds that part's share, reading
/// it where it is; then the epilogue. The sums are grouped by part, so the
/// bits differ from `conv2d` on the concatenation (tested against it within
/// float rounding). Other convolutions get the concatenation.
public func conv2d(
    concatenating parts: [Tensor], broadcasting constant: Tensor, weight: Tensor, bias: Tensor? = nil,
    geometry: ConvGeometry, workspace: Workspace = Workspace(), fastPaths: Bool = true,
    scale: Tensor? = nil, relu: Bool = false
) -> Tensor {
    let first = parts[0].shape
    precondition(constant.shape.rank == 4 && constant.shape.batch == first.batch
        && constant.shape.height == 1 && constant.shape.width == 1,
        "conv2d broadcasts a [\(first.batch), C, 1, 1] tensor, not \(constant.shape)")
    guard geometry.isPointwise else {
        let repeated = bilinearResize(constant, height: first.height, width: first.width)
        return conv2d(concatenating: parts + [repeated], weight: weight, bias: bias, geometry: geometry,
                      workspace: workspace, fastPaths: fastPaths, scale: scale, relu: relu)
    }
    precondition(parts.allSatisfy { $0.shape.rank == 4 && $0.shape.batch == first.batch
        && $0.shape.height == first.height && $0.shape.width == first.width }
        && parts.map(\.shape.channels).reduce(0, +) + constant.shape.channels == geometry.inputChannels,
        "conv2d parts \(parts.map(\.shape)) and \(constant.shape) are not the channels of \(geometry.inputShape)")
    checkConvolutionArguments(weight: weight, bias: bias, scale: scale, geometry: geometry)
    let (N, K, C, plane) = (geometry.batch, geometry.outputChannels, geometry.inputChannels, geometry.outputPlane)
    let constantChannels = constant.shape.channels
    return Tensor(shape: geometry.outputShape) { y in
        withPointers(parts) { pointers in
            weight.withPointer { w in
                constant.withPointer { z in
                    bias.withPointerIfPresent { b in
                        scale.withPointerIfPresent { a in
                            let epilogue = ConvolutionEpilogue(scale: a, shift: b, relu: relu)
                            let output = SendablePointer(y.baseAddress!)
                            let (w, z) = (SendablePointer(UnsafeMutablePointer(mutating: w)), SendablePointer(UnsafeMutablePointer(mutating: z)))
                            for n in 0..<N {
                                let image = output.base + n * K * plane
                                parallelFor(K, minimumChunk: max(1, (1 << 14) / plane)) { ks in
                                    for k in ks {
                                        let row = w.base + k * C + (C - constantChannels)
                                        var share: Float = 0
                                        for c in 0..<constantChannels { share += row[c] * z.base[n * constantChannels + c] }
                                        (image + k * plane).update(repeating: share, count: plane)
                                    }
                                }
                                var offset = 0
                                for (part, pointer) in zip(parts, pointers) {
                                    let channels = part.shape.channels
                                    BLAS.parallelSgemm(.none, .none, m: K, n: plane, k: channels, a: w.base + offset, lda: C,
                                                       b: pointer + n * channels * plane, ldb: plane,
                                                       beta: 1, c: image, ldc: plane)
                                    offset += channels
                                }
                                parallelFor(K, minimumChunk: max(1, (1 << 14) / plane)) { ks in
                                    epilogue.apply(image, residualBase: n * K * plane, channels: ks, count: plane, rowStride: plane)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `conv2d` of a pointwise (1×1, stride 1, no padding) convolution whose
/// output overwrites its residual: returns `max(conv·scale + bias +
/// residual, 0)` (ReLU with `relu`) in `residual`'s own buffer when the
/// caller passed its only reference, so a ResNet block's output takes no
/// memory beside its input (at inference at 1024², 128 MiB per layer4
/// block). A shared residual is copied first, as any write to a shared
/// tensor. The bits are those of `conv2d(…, residual:)`.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil,
    geometry: ConvGeometry, workspace: Workspace = Workspace(),
    scale: Tensor? = nil, overwriting residual: consuming Tensor, relu: Bool = false
) -> Tensor {
    conv2d(input, weight: weight, bias: bias, geometry: geometry, workspace: workspace, scale: scale,
           overwriting: residual, relu: relu, productBudget: 4 << 20)
}

/// `conv2d(…, overwriting:)` in blocks of at most `productBudget` scalars
/// of products (`pointwiseForwardOverResidual`); tests make them small.
func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry, workspace: Workspace,
    scale: Tensor?, overwriting residual: consuming Tensor, relu: Bool, productBudget: Int
) -> Tensor {
    precondition(geometry.isPointwise, "only a pointwise convolution can write over its residual, not \(geometry)")
    precondition(input.shape == geometry.inputShape, "conv2d input \(input.shape) ≠ \(geometry.inputShape) for \(geometry)")
    precondition(residual.shape == geometry.outputShape, "conv2d residual must be \(geometry.outputShape)")
    checkConvolutionArguments(weight: weight, bias: bias, scale: scale, geometry: geometry)
    var output = residual
    output.withUnsafeMutableBufferPointer { y in
        input.withPointer { x in
            weight.withPointer { w in
                bias.withPointerIfPresent { b in
                    scale.withPointerIfPresent { a in
                        pointwiseForwardOverResidual(output: y.baseAddress!, input: x, weight: w,
                                                     epilogue: ConvolutionEpilogue(scale: a, shift: b, relu: relu),
                                                     geometry: geometry, workspace: workspace, productBudget: productBudget)
                    }
                }
            }
        }
    }
    return output
}

/// A pointwise convolution whose residual is `output` itself (`epilogue`
/// has no residual of its own): each worker multiplies a block of columns
/// into its own scratch and then applies the epilogue from there over the
/// output, so every residual is read before its place is written. Blocks of
/// whole 16-column panels, at most `productBudget` scalars of products each
/// (16 MB: 2048 columns of layer4, so one block per worker at 480², the
/// GEMMs of the plain path), and at least one block per worker.
func pointwiseForwardOverResidual(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace, productBudget: Int
) {
    let (K, C, PQ) = (g.outputChannels, g.inputChannels, g.outputPlane)
    let workers = Parallelism.workerCount
    let widest = max(16, productBudget / K / 16 * 16)
    let columns = min(widest, ((PQ + workers - 1) / workers + 15) / 16 * 16)
    let blocksPerImage = (PQ + columns - 1) / columns
    let items = g.batch * blocksPerImage
    let slotSize = K * columns
    let scratch = SendablePointer(workspace.scratch(min(workers, items) * slotSize))
    let output = SendablePointer(output)
    let input = SendablePointer(UnsafeMutablePointer(mutating: input))
    let weight = SendablePointer(UnsafeMutablePointer(mutating: weight))
    parallelChunks(items, chunks: workers) { slot, range in
        let products = scratch.base + slot * slotSize
        for item in range {
            let (image, block) = item.quotientAndRemainder(dividingBy: blocksPerImage)
            let first = block * columns
            let n = min(columns, PQ - first)
            // W[K, C] × X[C, n] (row stride P·Q) → products[K, n]
            BLAS.sgemm(.none, .none, m: K, n: n, k: C, a: weight.base, lda: C,
                       b: input.base + image * C * PQ + first, ldb: PQ, beta: 0, c: products, ldc: n)
            epilogue.apply(from: products, overResidual: output.base + image * K * PQ + first, channels: 0..<K,
                           count: n, sourceStride: n, rowStride: PQ)
        }
    }
}

/// The preconditions every `conv2d` form checks of its weights and epilogue.
private func checkConvolutionArguments(weight: Tensor, bias: Tensor?, scale: Tensor?, geometry: ConvGeometry) {
    precondition(weight.shape == geometry.weightShape, "conv2d weight \(weight.shape) ≠ \(geometry.weightShape)")
    precondition(bias == nil || bias!.shape == [geometry.outputChannels], "conv2d bias must be [\(geometry.outputChannels)]")
    precondition(scale == nil || scale!.shape == [geometry.outputChannels], "conv2d scale must be [\(geometry.outputChannels)]")
}

/// The direct-loop reference of `conv2d`, for tests.
public func conv2dReference(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, geometry: ConvGeometry) -> Tensor {
    Tensor(shape: geometry.outputShape) { y in
        input.withPointer { x in
            weight.withPointer { w in
                if let bias {
                    bias.withPointer { conv2dReference(output: y.baseAddress!, input: x, weight: w, bias: $0, geometry: geometry) }
                } else {
                    conv2dReference(output: y.baseAddress!, input: x, weight: w, bias: nil, geometry: geometry)
                }
            }
        }
    }
}

/// Adds the gradients of `conv2d` into each non-nil gradient tensor. With
/// `fastPaths`, the gradients of a convolution `Winograd.applies(to:)` run
/// by Winograd: the data gradient as a Winograd convolution of dY, the
/// weight gradient as the adjoint of the Winograd forward; and a convolution
/// whose outer taps only ever read padding runs as the convolution by its
/// other taps (`PaddingTaps.centredValidTaps`).
public func conv2dBackward(
    inputGradient: inout Tensor?, weightGradient: inout Tensor?, biasGradient: inout Tensor?,
    outputGradient: Tensor, input: Tensor, weight: Tensor,
    geometry: ConvGeometry, workspace: Workspace = Workspace(), fastPaths: Bool = true
) {
    conv2dBackward(inputGradient: &inputGradient, weightGradient: &weightGradient, biasGradient: &biasGradient,
                   outputGradient: outputGradient, input: input, weight: weight, geometry: geometry, workspace: workspace,
                   fastPaths: fastPaths, weightGradientLow: nil, biasGradientLow: nil)
}

/// `conv2dBackward` adding the parts of the weight and bias gradients that
/// rounding dropped into `weightGradientLow` and `biasGradientLow` (each
/// `weightGradient`'s or `biasGradient`'s size; a data-parallel rank's
/// `GradientLowParts`).
func conv2dBackward(
    inputGradient: inout Tensor?, weightGradient: inout Tensor?, biasGradient: inout Tensor?,
    outputGradient: Tensor, input: Tensor, weight: Tensor, geometry: ConvGeometry, workspace: Workspace,
    fastPaths: Bool, weightGradientLow: UnsafeMutablePointer<Float>?, biasGradientLow: UnsafeMutablePointer<Float>?
) {
    precondition(outputGradient.shape == geometry.outputShape, "conv2d output gradient \(outputGradient.shape) ≠ \(geometry.outputShape)")
    precondition(inputGradient == nil || inputGradient!.shape == geometry.inputShape)
    precondition(weightGradient == nil || weightGradient!.shape == geometry.weightShape)
    precondition(biasGradient == nil || biasGradient!.shape == [geometry.outputChannels])
    outputGradient.withPointer { dy in
        input.withPointer { x in
            weight.withPointer { w in
                inputGradient.withUnsafeMutablePointerIfPresent { dx in
                    weightGradient.withUnsafeMutablePointerIfPresent { dw in
                        biasGradient.withUnsafeMutablePointerIfPresent { db in
                            conv2dBackward(
                                inputGradient: dx, weightGradient: dw, biasGradient: db,
                                outputGradient: dy, input: x, weight: w, geometry: geometry, workspace: workspace,
                                fastPaths: fastPaths, weightGradientLow: weightGradientLow, biasGradientLow: biasGradientLow)
                        }
                    }
                }
            }
        }
    }
}
/// What a convolution applies to its output on the way out, per output
/// channel k, fused into the pass that writes it:
///
///     y = max(conv·scale[k] + shift[k] + residual, 0)
///
/// each part optional (no scale: 1; no shift: 0; no residual; no ReLU). A
/// bias is a shift alone; batch norm at inference is a scale and a shift
/// (`BatchNorm2d.inferenceAffine`), so a ResNet block's conv → BN → (+ x) →
/// ReLU is one pass over the output instead of four, and no intermediate
/// tensor is allocated. The arithmetic is that of the unfused layers, in
/// the same order, so results are bit for bit the same.
struct ConvolutionEpilogue: @unchecked Sendable {
    var scale: UnsafePointer<Float>? = nil
    var shift: UnsafePointer<Float>? = nil
    /// Same layout as the output ([N, K, P, Q]).
    var residual: UnsafePointer<Float>? = nil
    var relu = false

    static func bias(_ bias: UnsafePointer<Float>?) -> ConvolutionEpilogue { ConvolutionEpilogue(shift: bias) }

    var isEmpty: Bool { scale == nil && shift == nil && residual == nil && !relu }

    /// One value of channel `k` whose residual (if any) is at `residualOffset`.
    @inline(__always)
    func apply(_ value: Float, channel k: Int, residualOffset: Int) -> Float {
        var v = value
        if let scale { v *= scale[k] }
        if let shift { v += shift[k] }
        if let residual { v += residual[residualOffset] }
        return relu ? max(v, 0) : v
    }

    /// The epilogue of a convolution whose residual is its own output, for
    /// `count` values of each channel in `channels`: y[k·rowStride + i] =
    /// max(source[k·sourceStride + i]·scale[k] + shift[k] + y[k·rowStride +
    /// i], 0), the arithmetic of the form with a separate residual. Each
    /// residual is read before its place is written, through the one
    /// pointer, so the loops vectorize (LLVM's check that a second pointer's
    /// range does not overlap fails when it is the same).
    func apply(
        from source: UnsafePointer<Float>, overResidual y: UnsafeMutablePointer<Float>, channels: Range<Int>,
        count: Int, sourceStride: Int, rowStride: Int
    ) {
        precondition(residual == nil, "the residual is the output")
        for k in channels {
            let from = source + k * sourceStride, row = y + k * rowStride
            let a = scale?[k] ?? 1, b = shift?[k] ?? 0
            if relu {
                for i in 0..<count { row[i] = max(from[i] * a + b + row[i], 0) }
            } else {
                for i in 0..<count { row[i] = from[i] * a + b + row[i] }
            }
        }
    }

    /// Applies in place to `count` values of each channel in `channels`:
    /// y[k·rowStride + i], whose residuals are at offset `residualBase +
    /// k·rowStride + i` (y's own offset from the output's start).
    func apply(
        _ y: UnsafeMutablePointer<Float>, residualBase: Int, channels: Range<Int>, count: Int, rowStride: Int
    ) {
        guard !isEmpty else { return }
        for k in channels {
            let row = y + k * rowStride
            let a = scale?[k] ?? 1, b = shift?[k] ?? 0
            if let residual {
                let r = residual + residualBase + k * rowStride
                if relu {
                    for i in 0..<count { row[i] = max(row[i] * a + b + r[i], 0) }
                } else {
                    for i in 0..<count { row[i] = row[i] * a + b + r[i] }
                }
            } else if scale != nil {
                if relu {
                    for i in 0..<count { row[i] = max(row[i] * a + b, 0) }
                } else {
                    for i in 0..<count { row[i] = row[i] * a + b }
                }
            } else {
                if relu {
                    for i in 0..<count { row[i] = max(row[i] + b, 0) }
                } else {
                    for i in 0..<count { row[i] += b }
                }
            }
        }
    }
}
