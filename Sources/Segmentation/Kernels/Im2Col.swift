// im2col and col2im for one image.
//
// C channels, H×W input, R×S kernel, P×Q output.
// cols[C·R·S, P·Q]: row (c, r, s), column (p, q) holds
//   image[c, p·strideH − padH + r·dilH, q·strideW − padW + s·dilW], or 0 outside the image.
//
// Each row is written as runs: zeros for output columns whose input column
// falls in the padding, then a bulk copy (stride 1) or strided gather of the
// valid span. This keeps the inner loop free of bounds checks, which is what
// lets it vectorise (Docs/performance.md, TOOLCHAIN §3).

/// The output columns q whose input column `q·stride − pad + offset` lies in
/// `0..<width`, as a half-open range clamped to `0..<outputWidth`.
@inline(__always)
private func validRange(offset: Int, stride: Int, padding: Int, width: Int, outputWidth: Int) -> Range<Int> {
    // need 0 ≤ q·stride + start < width with start = offset − padding
    let start = offset - padding
    // smallest q with q·stride + start ≥ 0
    let lower = start >= 0 ? 0 : (-start + stride - 1) / stride
    // largest q with q·stride + start ≤ width − 1, plus one
    let upperInclusive = width - 1 - start
    let upper = upperInclusive < 0 ? 0 : upperInclusive / stride + 1
    let lo = min(max(lower, 0), outputWidth)
    let hi = min(max(upper, lo), outputWidth)
    return lo..<hi
}

/// Fills `columns[C·R·S, rows·Q]` from `image[C, H, W]` for channels in
/// `channelRange` and output rows `outputRows` (default: all P), so a caller
/// can build the column matrix of a band of output rows that fits in cache.
func im2col(
    columns: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>,
    geometry g: ConvGeometry, channels channelRange: Range<Int>, outputRows: Range<Int>? = nil
) {
    let (H, W, Q) = (g.inputHeight, g.inputWidth, g.outputWidth)
    let (R, S) = (g.kernelHeight, g.kernelWidth)
    let rows = outputRows ?? 0..<g.outputHeight
    let rowLength = rows.count * Q
    for c in channelRange {
        let plane = image + c * H * W
        for r in 0..<R {
            for s in 0..<S {
                let row = columns + ((c * R + r) * S + s) * rowLength
                let qs = validRange(
                    offset: s * g.dilationWidth, stride: g.strideWidth,
                    padding: g.paddingWidth, width: W, outputWidth: Q)
                for p in rows {
                    let out = row + (p - rows.lowerBound) * Q
                    let ih = p * g.strideHeight - g.paddingHeight + r * g.dilationHeight
                    if ih < 0 || ih >= H || qs.isEmpty {
                        out.update(repeating: 0, count: Q)
                        continue
                    }
                    if qs.lowerBound > 0 { out.update(repeating: 0, count: qs.lowerBound) }
                    if qs.upperBound < Q { (out + qs.upperBound).update(repeating: 0, count: Q - qs.upperBound) }
                    // first valid input column for q = qs.lowerBound
                    let source = plane + ih * W + qs.lowerBound * g.strideWidth - g.paddingWidth + s * g.dilationWidth
                    if g.strideWidth == 1 {
                        (out + qs.lowerBound).update(from: source, count: qs.count)
                    } else {
                        let stride = g.strideWidth
                        let target = out + qs.lowerBound
                        for j in 0..<qs.count { target[j] = source[j * stride] }
                    }
                }
            }
        }
    }
}

/// Adds `columns[C·R·S, rows·Q]` back into `image[C, H, W]` (the adjoint of
/// `im2col`) for channels in `channelRange` and output rows `outputRows`
/// (default: all P). Accumulates: the image is not cleared first.
func col2imAccumulate(
    image: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>,
    geometry g: ConvGeometry, channels channelRange: Range<Int>, outputRows: Range<Int>? = nil
) {
    let (H, W, Q) = (g.inputHeight, g.inputWidth, g.outputWidth)
    let (R, S) = (g.kernelHeight, g.kernelWidth)
    let rows = outputRows ?? 0..<g.outputHeight
    let rowLength = rows.count * Q
    for c in channelRange {
        let plane = image + c * H * W
        for r in 0..<R {
            for s in 0..<S {
                let row = columns + ((c * R + r) * S + s) * rowLength
                let qs = validRange(
                    offset: s * g.dilationWidth, stride: g.strideWidth,
                    padding: g.paddingWidth, width: W, outputWidth: Q)
                if qs.isEmpty { continue }
                for p in rows {
                    let ih = p * g.strideHeight - g.paddingHeight + r * g.dilationHeight
                    if ih < 0 || ih >= H { continue }
                    let source = row + (p - rows.lowerBound) * Q + qs.lowerBound
                    let target = plane + ih * W + qs.lowerBound * g.strideWidth - g.paddingWidth + s * g.dilationWidth
                    let stride = g.strideWidth
                    if stride == 1 {
                        for j in 0..<qs.count { target[j] += source[j] }
                    } else {
                        for j in 0..<qs.count { target[j * stride] += source[j] }
                    }
                }
            }
        }
    }
}
