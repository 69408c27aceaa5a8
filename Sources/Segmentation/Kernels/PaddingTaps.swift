// A stride-1 convolution whose kernel mostly reads padding, computed without
// the padding taps.
//
// DeepLab's ASPP runs 3×3 convolutions at dilation 24 and 36 on a 60×60
// feature map (480² input): for most outputs, two of the three row taps and
// two of the three column taps fall outside the image, and im2col + sgemm
// multiplies those zeros all the same (at dilation 36, 64 % of the work).
//
// Along one axis, the outputs whose tap reads inside the input form one
// interval. So a kernel column's valid outputs are an interval of output
// columns, and the input columns they read are a strip of the input, whose
// rows are contiguous once copied out (the centre column of a
// size-preserving convolution reads the input itself, in place). A kernel
// row's valid outputs are an interval of output rows, which in the strip
// are contiguous too: each valid tap is one wide GEMM straight from its
// strip, with no column matrix.

/// One interval of outputs along an axis, and the interval of kernel taps
/// that read inside the input for all of them.
struct TapSegment: Equatable {
    var outputs: Range<Int>
    var taps: Range<Int>
}

/// The segments of `0..<outputExtent` with constant valid taps, for a
/// stride-1 axis (segments with no valid tap included, with empty `taps`).
func tapSegments(outputExtent: Int, inputExtent: Int, kernel: Int, padding: Int, dilation: Int) -> [TapSegment] {
    func taps(at p: Int) -> Range<Int> {
        // 0 ≤ p − padding + r·dilation < inputExtent
        var lower = 0, upper = kernel
        while lower < kernel && p - padding + lower * dilation < 0 { lower += 1 }
        while upper > lower && p - padding + (upper - 1) * dilation >= inputExtent { upper -= 1 }
        return lower..<upper
    }
    var segments: [TapSegment] = []
    for p in 0..<outputExtent {
        let valid = taps(at: p)
        if let last = segments.last, last.taps == valid {
            segments[segments.count - 1].outputs = last.outputs.lowerBound..<(p + 1)
        } else {
            segments.append(TapSegment(outputs: p..<(p + 1), taps: valid))
        }
    }
    return segments
}

enum PaddingTaps {
    /// The share of the direct form's multiply-adds that read inside the input.
    static func validFraction(_ g: ConvGeometry) -> Double {
        let rows = tapSegments(outputExtent: g.outputHeight, inputExtent: g.inputHeight, kernel: g.kernelHeight,
                               padding: g.paddingHeight, dilation: g.dilationHeight)
        let columns = tapSegments(outputExtent: g.outputWidth, inputExtent: g.inputWidth, kernel: g.kernelWidth,
                                  padding: g.paddingWidth, dilation: g.dilationWidth)
        let rowWork = rows.reduce(0) { $0 + $1.outputs.count * $1.taps.count }
        let columnWork = columns.reduce(0) { $0 + $1.outputs.count * $1.taps.count }
        return Double(rowWork * columnWork) / Double(g.outputPlane * g.kernelHeight * g.kernelWidth)
    }

    /// Stride 1, a kernel larger than 1×1, and at least a fifth of the
    /// work in padding taps (ASPP at 480²: rate 12 has 25 %, 24 has 46 %,
    /// 36 has 64 %).
    static func applies(to g: ConvGeometry) -> Bool {
        g.strideHeight == 1 && g.strideWidth == 1 && g.kernelHeight * g.kernelWidth > 1
            && validFraction(g) <= 0.8
    }
}

/// Forward of a stride-1 convolution (worth it where `PaddingTaps.applies(to:)`).
/// Overwrites `output`.
///
/// Per image, for each kernel column s whose taps read inside the input for
/// some outputs (columns Qₛ, an interval): the strip of input columns they
/// read, [C, H, |Qₛ|], copied once (the input itself when those are all its
/// columns, in order); per kernel row r, the output rows whose tap reads
/// inside (an interval, contiguous in the strip): one GEMM
/// kernel[r, s] [K, C] × strip rows [C, rows·|Qₛ|] added into the strip's sum
/// [K, P, |Qₛ|], which is the output itself for a strip of whole width. A
/// last pass adds the other strips' sums into the output and applies the
/// epilogue. The strips are copied in blocks of input channels within
/// `columnBudget` scalars. Every GEMM is split over the workers at
/// 64-column multiples (`parallelSgemm`), so an image's result does not
/// depend on its batch or on the worker count.
func paddingSkippingForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace, columnBudget: Int = 8 << 20
) {
    let (C, K, H, W, P, Q, R, S) = (g.inputChannels, g.outputChannels, g.inputHeight, g.inputWidth,
                                    g.outputHeight, g.outputWidth, g.kernelHeight, g.kernelWidth)
    let rowTaps = validOutputs(outputExtent: P, inputExtent: H, kernel: R, padding: g.paddingHeight, dilation: g.dilationHeight)
    let strips = validOutputs(outputExtent: Q, inputExtent: W, kernel: S, padding: g.paddingWidth, dilation: g.dilationWidth)
        .enumerated().compactMap { s, outputs in
            outputs.isEmpty ? nil : TapStrip(tap: s, outputs: outputs, firstInput: outputs.lowerBound - g.paddingWidth + s * g.dilationWidth,
                                             inputWidth: W, outputWidth: Q)
        }
    // Scratch: the kernel as [R, S, K, C], the sums of the strips narrower
    // than the output, and the copied strips of one block of channels.
    let kernelSize = R * S * K * C
    var sumOffsets: [Int?] = [], sumsSize = 0
    for strip in strips {
        sumOffsets.append(strip.intoOutput ? nil : kernelSize + sumsSize)
        if !strip.intoOutput { sumsSize += K * P * strip.width }
    }
    let copiedWidth = strips.filter(\.copied).reduce(0) { $0 + $1.width }
    // Equal blocks, as many as the budget needs.
    let fitting = copiedWidth == 0 ? C : max(1, columnBudget / (H * copiedWidth))
    let blocks = (C + fitting - 1) / fitting
    let blockChannels = (C + blocks - 1) / blocks
    let base = workspace.scratch(kernelSize + sumsSize + blockChannels * H * copiedWidth)
    let kernel = SendablePointer(base), stripBase = base + kernelSize + sumsSize
    let weight = SendablePointer(UnsafeMutablePointer(mutating: weight))
    let input = SendablePointer(UnsafeMutablePointer(mutating: input)), output = SendablePointer(output)

    parallelForBalanced(K, grain: max(1, K / (8 * Parallelism.workerCount))) { ks in
        for k in ks {
            for c in 0..<C {
                for t in 0..<(R * S) { kernel.base[(t * K + k) * C + c] = weight.base[(k * C + c) * R * S + t] }
            }
        }
    }
    for image in 0..<g.batch {
        let x = input.base + image * C * H * W
        let y = output.base + image * K * P * Q
        y.update(repeating: 0, count: K * P * Q)
        (base + kernelSize).update(repeating: 0, count: sumsSize)
        for c0 in stride(from: 0, to: C, by: blockChannels) {
            let channels = c0..<min(C, c0 + blockChannels)
            // Each copied strip of this block: [channels, H, width], its rows contiguous.
            var stripAt: [UnsafePointer<Float>] = []
            var next = stripBase
            for strip in strips {
                if strip.copied {
                    stripAt.append(UnsafePointer(next))
                    next += channels.count * H * strip.width
                } else {
                    stripAt.append(UnsafePointer(x + c0 * H * W))
                }
            }
            let copies = SendablePointer(stripBase)
            parallelFor(channels.count, minimumChunk: max(1, (1 << 16) / max(1, H * copiedWidth))) { block in
                var target = copies.base
                for strip in strips where strip.copied {
                    for c in block {
                        for h in 0..<H {
                            (target + (c * H + h) * strip.width).update(
                                from: x + ((c0 + c) * H + h) * W + strip.firstInput, count: strip.width)
                        }
                    }
                    target += channels.count * H * strip.width
                }
            }
            for (index, strip) in strips.enumerated() {
                let (sums, stride) = sumOffsets[index].map { (base + $0, strip.width) } ?? (y, Q)
                for (r, rows) in rowTaps.enumerated() where !rows.isEmpty {
                    let firstRow = rows.lowerBound - g.paddingHeight + r * g.dilationHeight
                    BLAS.parallelSgemm(.none, .none, m: K, n: rows.count * strip.width, k: channels.count,
                                       a: kernel.base + ((r * S + strip.tap) * K) * C + c0, lda: C,
                                       b: stripAt[index] + firstRow * strip.width, ldb: H * strip.width,
                                       beta: 1, c: sums + rows.lowerBound * stride, ldc: P * stride)
                }
            }
        }
        // The narrower strips' sums into the output, then the epilogue.
        let sums = SendablePointer(base)
        parallelFor(K, minimumChunk: max(1, (1 << 14) / (P * Q))) { ks in
            for (index, strip) in strips.enumerated() {
                guard let offset = sumOffsets[index] else { continue }
                for k in ks {
                    for p in 0..<P {
                        let from = sums.base + offset + (k * P + p) * strip.width
                        let to = y + (k * P + p) * Q + strip.outputs.lowerBound
                        for j in 0..<strip.width { to[j] += from[j] }
                    }
                }
            }
            epilogue.apply(y, residualBase: image * K * P * Q, channels: ks, count: P * Q, rowStride: P * Q)
        }
    }
}

/// One kernel column's outputs that read inside the input (`outputs`, whose
/// first reads input column `firstInput`) and where its strip comes from.
private struct TapStrip {
    let tap: Int
    let outputs: Range<Int>
    let firstInput: Int
    var width: Int { outputs.count }
    /// Whether the strip is copied out of the input, rather than being all of
    /// the input's columns in order (then read in place).
    let copied: Bool
    /// Whether its sums are the output's rows (a strip of whole width).
    let intoOutput: Bool

    init(tap: Int, outputs: Range<Int>, firstInput: Int, inputWidth: Int, outputWidth: Int) {
        self.tap = tap
        self.outputs = outputs
        self.firstInput = firstInput
        copied = !(firstInput == 0 && outputs.count == inputWidth)
        intoOutput = outputs.count == outputWidth
    }
}

/// Per kernel tap along a stride-1 axis, the outputs whose tap reads inside
/// the input (an interval, possibly empty).
func validOutputs(outputExtent: Int, inputExtent: Int, kernel: Int, padding: Int, dilation: Int) -> [Range<Int>] {
    (0..<kernel).map { r in
        // 0 ≤ p − padding + r·dilation < inputExtent, 0 ≤ p < outputExtent
        let lower = max(0, padding - r * dilation)
        let upper = min(outputExtent, inputExtent + padding - r * dilation)
        return lower < upper ? lower..<upper : 0..<0
    }
}

// MARK: - Taps that never read the input

extension PaddingTaps {
    /// The convolution by the kernel taps that read inside the input for at
    /// least one output, when they are a centred part of the kernel smaller
    /// than it (stride 1): the other taps only ever multiply padding. DeepLab's
    /// widest ASPP rate in training (3×3 at dilation 36 on the 30×30 map of a
    /// 240 crop) reads the image with its centre tap alone, so it is a 1×1
    /// convolution. `rows` and `columns`: the kept taps; same output.
    static func centredValidTaps(_ g: ConvGeometry) -> (geometry: ConvGeometry, rows: Range<Int>, columns: Range<Int>)? {
        guard g.strideHeight == 1, g.strideWidth == 1 else { return nil }
        func kept(output: Int, input: Int, kernel: Int, padding: Int, dilation: Int) -> Range<Int>? {
            let taps = tapSegments(outputExtent: output, inputExtent: input, kernel: kernel, padding: padding, dilation: dilation)
                .map(\.taps).filter { !$0.isEmpty }
            guard let lower = taps.map(\.lowerBound).min(), let upper = taps.map(\.upperBound).max(),
                  lower == kernel - upper, padding - lower * dilation >= 0
            else { return nil }
            return lower..<upper
        }
        guard let rows = kept(output: g.outputHeight, input: g.inputHeight, kernel: g.kernelHeight,
                              padding: g.paddingHeight, dilation: g.dilationHeight),
              let columns = kept(output: g.outputWidth, input: g.inputWidth, kernel: g.kernelWidth,
                                 padding: g.paddingWidth, dilation: g.dilationWidth),
              rows.count * columns.count < g.kernelHeight * g.kernelWidth
        else { return nil }
        var cropped = g
        cropped.kernelHeight = rows.count
        cropped.kernelWidth = columns.count
        cropped.paddingHeight = g.paddingHeight - rows.lowerBound * g.dilationHeight
        cropped.paddingWidth = g.paddingWidth - columns.lowerBound * g.dilationWidth
        if rows.count == 1 { cropped.dilationHeight = 1 }
        if columns.count == 1 { cropped.dilationWidth = 1 }
        guard cropped.outputHeight == g.outputHeight, cropped.outputWidth == g.outputWidth else { return nil }
        return (cropped, rows, columns)
    }
}

/// The backward of a convolution whose kept taps (`PaddingTaps.centredValidTaps`)
/// are fewer than its kernel's: the backward of the convolution by those taps
/// alone, its weight gradient added into theirs; the other taps' gradient is
/// zero (they only multiply padding), so they are left as they are.
func croppedKernelBackward(
    inputGradient: UnsafeMutablePointer<Float>?, weightGradient: UnsafeMutablePointer<Float>?,
    biasGradient: UnsafeMutablePointer<Float>?, outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, geometry g: ConvGeometry,
    crop: (geometry: ConvGeometry, rows: Range<Int>, columns: Range<Int>), workspace: Workspace,
    weightGradientLow: UnsafeMutablePointer<Float>? = nil, biasGradientLow: UnsafeMutablePointer<Float>? = nil
) {
    let kernels = g.outputChannels * g.inputChannels
    let (R, S) = (g.kernelHeight, g.kernelWidth)
    let taps = crop.rows.count * crop.columns.count
    let cropped = UnsafeMutablePointer<Float>.allocate(capacity: 3 * kernels * taps)
    defer { cropped.deallocate() }
    let croppedGradient = cropped + kernels * taps, croppedLow = croppedGradient + kernels * taps
    /// Each kept tap of every kernel: its index in the [K·C, R, S] weight and in the [K·C, rows, columns] crop.
    func forEachKeptTap(_ body: (_ full: Int, _ kept: Int) -> Void) {
        for i in 0..<kernels {
            var t = i * taps
            for r in crop.rows {
                for s in crop.columns {
                    body(i * R * S + r * S + s, t)
                    t += 1
                }
            }
        }
    }
    forEachKeptTap { full, kept in cropped[kept] = weight[full] }
    if weightGradient != nil { croppedGradient.initialize(repeating: 0, count: 2 * kernels * taps) }
    conv2dBackward(inputGradient: inputGradient, weightGradient: weightGradient == nil ? nil : croppedGradient,
                   biasGradient: biasGradient, outputGradient: outputGradient, input: input, weight: cropped,
                   geometry: crop.geometry, workspace: workspace,
                   weightGradientLow: weightGradientLow == nil ? nil : croppedLow, biasGradientLow: biasGradientLow)
    if let weightGradient {
        forEachKeptTap { full, kept in weightGradient[full] += croppedGradient[kept] }
    }
    if let weightGradientLow {
        forEachKeptTap { full, kept in weightGradientLow[full] += croppedLow[kept] }
    }
}
