// A stride-1 convolution whose kernel mostly reads padding, computed without
// the padding taps.
//
// DeepLab's ASPP runs 3×3 convolutions at dilation 24 and 36 on a 60×60
// feature map (480² input): for most outputs, two of the three row taps and
// two of the three column taps fall outside the image, and im2col + sgemm
// multiplies those zeros all the same (at dilation 36, 64 % of the work).
//
// Along one axis, the taps that read inside the input form an interval
// that only changes at a few output positions, so the output plane splits
// into rectangles (row segment × column segment) with one fixed set of valid
// taps each. Per rectangle, a column matrix of the valid taps alone (no
// bounds checks: every read is inside) and one GEMM per valid kernel row
// against the kernel reordered to [K, R, S, C], whose valid taps of a kernel
// row are then contiguous columns.

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
/// Overwrites `output`. Each rectangle is done in bands of rows whose column
/// matrix stays within `columnBudget` scalars; the (image, rectangle, band)
/// tasks go largest first to whichever worker is free, each doing its own
/// with single-threaded GEMMs (so the kernel is packed once per task, not
/// once per worker), which also keeps the result independent of the worker
/// count and of which worker runs a task.
func paddingSkippingForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, epilogue: ConvolutionEpilogue,
    geometry g: ConvGeometry, workspace: Workspace, columnBudget: Int = 8 << 20
) {
    let (C, K, H, W, P, Q, R, S) = (g.inputChannels, g.outputChannels, g.inputHeight, g.inputWidth,
                                    g.outputHeight, g.outputWidth, g.kernelHeight, g.kernelWidth)
    let rowSegments = tapSegments(outputExtent: P, inputExtent: H, kernel: R, padding: g.paddingHeight, dilation: g.dilationHeight)
    let columnSegments = tapSegments(outputExtent: Q, inputExtent: W, kernel: S, padding: g.paddingWidth, dilation: g.dilationWidth)
    let largestTaps = (rowSegments.map(\.taps.count).max() ?? 0) * (columnSegments.map(\.taps.count).max() ?? 0)
    let widest = columnSegments.map(\.outputs.count).max() ?? 1
    let bandRows = max(1, columnBudget / max(1, largestTaps * C * widest))

    struct Task {
        var image: Int
        var rows: Range<Int>, rowTaps: Range<Int>
        var columns: Range<Int>, columnTaps: Range<Int>
        var work: Int { rows.count * columns.count * max(1, rowTaps.count * columnTaps.count) }
    }
    var tasks: [Task] = []
    for image in 0..<g.batch {
        for rowSegment in rowSegments {
            for columnSegment in columnSegments {
                for p0 in stride(from: rowSegment.outputs.lowerBound, to: rowSegment.outputs.upperBound, by: bandRows) {
                    tasks.append(Task(image: image, rows: p0..<min(rowSegment.outputs.upperBound, p0 + bandRows),
                                      rowTaps: rowSegment.taps, columns: columnSegment.outputs, columnTaps: columnSegment.taps))
                }
            }
        }
    }
    // Largest first, each to the next worker free (the smallest come last and even out the end).
    let workers = max(1, min(Parallelism.workerCount, tasks.count))
    let ordered = tasks.sorted { $0.work > $1.work }

    // Scratch: the kernel as [K, R, S, C], then per worker a column matrix and a band of output.
    let reordered = K * R * S * C
    let columnsSize = largestTaps * C * bandRows * widest
    let slotSize = columnsSize + K * bandRows * widest
    let base = workspace.scratch(reordered + workers * slotSize)
    let kernel = SendablePointer(base), slots = SendablePointer(base + reordered)
    let weight = SendablePointer(UnsafeMutablePointer(mutating: weight))
    let input = SendablePointer(UnsafeMutablePointer(mutating: input)), output = SendablePointer(output)

    parallelForBalanced(K, grain: max(1, K / (8 * workers))) { ks in
        for k in ks {
            for c in 0..<C {
                for t in 0..<(R * S) { kernel.base[(k * R * S + t) * C + c] = weight.base[(k * C + c) * R * S + t] }
            }
        }
    }
    parallelChunksBalanced(ordered.count, grain: 1) { worker, range in
        let columns = slots.base + worker * slotSize
        let band = columns + columnsSize
        for task in ordered[range] {
            let x = input.base + task.image * C * H * W
            let y = output.base + task.image * K * P * Q
            let (rs, cs, rows) = (task.rowTaps, task.columnTaps, task.rows)
            let (q0, width) = (task.columns.lowerBound, task.columns.count)
            guard !rs.isEmpty, !cs.isEmpty else {
                // Every tap in the padding: the convolution is 0.
                for k in 0..<K {
                    for p in rows {
                        let offset = ((task.image * K + k) * P + p) * Q + q0
                        for j in 0..<width { y[(k * P + p) * Q + q0 + j] = epilogue.apply(0, channel: k, residualOffset: offset + j) }
                    }
                }
                continue
            }
            let pixels = rows.count * width
            let depth = cs.count * C   // columns of one kernel row's valid taps
            // columns[(r, s, c), pixel] = x[c, p − pad + r·d, q − pad + s·d], all inside.
            for (ri, r) in rs.enumerated() {
                for (si, s) in cs.enumerated() {
                    let column = q0 - g.paddingWidth + s * g.dilationWidth
                    for c in 0..<C {
                        let target = columns + ((ri * cs.count + si) * C + c) * pixels
                        for (i, p) in rows.enumerated() {
                            let row = p - g.paddingHeight + r * g.dilationHeight
                            (target + i * width).update(from: x + (c * H + row) * W + column, count: width)
                        }
                    }
                }
            }
            // band[K, pixels] = Σ_r kernel[K, r, cs, C] × columns[(r, cs, C), pixels]
            for (ri, r) in rs.enumerated() {
                BLAS.sgemm(.none, .none, m: K, n: pixels, k: depth,
                           a: kernel.base + (r * S + cs.lowerBound) * C, lda: R * S * C,
                           b: columns + ri * depth * pixels, ldb: pixels,
                           beta: ri == 0 ? 0 : 1, c: band, ldc: pixels)
            }
            for k in 0..<K {
                for (i, p) in rows.enumerated() {
                    let source = band + k * pixels + i * width
                    let target = y + (k * P + p) * Q + q0
                    let offset = ((task.image * K + k) * P + p) * Q + q0
                    for j in 0..<width { target[j] = epilogue.apply(source[j], channel: k, residualOffset: offset + j) }
                }
            }
        }
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
