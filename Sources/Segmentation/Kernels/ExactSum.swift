// Sums over the images of a batch whose bits do not depend on how the batch
// is split: over the lanes of a kernel, the threads of a process, or the
// ranks of a data-parallel job (SPEC §10).
//
// A weight gradient is a sum over images. Each image's own term is computed
// the same way in any batch (the same products in the same order), and the
// terms are added in Double and rounded to Float once. The Double sum of a
// few floats is exact unless their exponents lie more than 29 bits apart,
// and even then it errs by far less than half a float ulp, so the rounded
// result is the float nearest the exact sum, whatever the grouping (only a
// sum within 2⁻²⁹ ulp of a rounding tie could round two ways). Two terms
// need no Double: a float addition is the rounded exact sum.
//
// Across ranks the rounding waits until the ranks' sums are added: a rank
// hands on its sum as a high and a low float (`splitExactSum`), which carry
// 48 bits of it, and the gradient all-reduce adds those in Double.

/// Rows of floats in memory: row r starts at `base + r·stride`.
struct FloatRows: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let stride: Int

    init(_ base: UnsafeMutablePointer<Float>, stride: Int = 0) {
        self.base = base
        self.stride = stride
    }

    init(_ base: UnsafePointer<Float>, stride: Int = 0) {
        self.init(UnsafeMutablePointer(mutating: base), stride: stride)
    }

    @inline(__always) func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * stride }
}

/// `rows` × `width` elements, split over the workers in pieces of about
/// 16384 (whole rows when rows are long, parts of one row otherwise).
@inline(__always)
private func forEachPiece(rows: Int, width: Int, _ body: (_ row: Int, _ columns: Range<Int>) -> Void) {
    let piece = 16384
    let piecesPerRow = (width + piece - 1) / piece
    parallelForBalanced(rows * piecesPerRow, grain: max(1, piece / max(1, width))) { items in
        for item in items {
            let (row, part) = item.quotientAndRemainder(dividingBy: piecesPerRow)
            let columns = (part * piece)..<min(width, (part + 1) * piece)
            body(row, columns)
        }
    }
}

/// sum[r, j] (= when `first`, else +=) Σ_t Double(terms[t][r, j]), for
/// `rows` × `width` elements; `sum`'s rows are `sumStride` apart (default: dense).
func accumulateExactly(_ sum: UnsafeMutablePointer<Double>, sumStride: Int? = nil, terms: [FloatRows],
                       rows: Int, width: Int, first: Bool) {
    let sum = SendablePointer(sum), sumStride = sumStride ?? width
    forEachPiece(rows: rows, width: width) { row, columns in
        let s = sum.base + row * sumStride
        for (index, term) in terms.enumerated() {
            let t = UnsafePointer(term.row(row))
            if index == 0 && first {
                for j in columns { s[j] = Double(t[j]) }
            } else {
                for j in columns { s[j] += Double(t[j]) }
            }
        }
    }
}

/// target[r, j] = Float(sum[r, j]): the exact sum rounded once (the sums
/// started from the target's content). With `low`, the part the rounding
/// dropped is added there (low[r, j] += sum − Float(sum)), for a reduction
/// over ranks that must not round twice.
func storeRounded(_ sum: UnsafePointer<Double>, sumStride: Int? = nil, into target: FloatRows, low: FloatRows?,
                  rows: Int, width: Int) {
    let sum = SendablePointer(UnsafeMutablePointer(mutating: sum)), sumStride = sumStride ?? width
    forEachPiece(rows: rows, width: width) { row, columns in
        let s = sum.base + row * sumStride, t = target.row(row)
        if let low {
            let l = low.row(row)
            for j in columns {
                let (high, rest) = splitExactSum(s[j])
                t[j] = high
                l[j] += rest
            }
        } else {
            for j in columns { t[j] = Float(s[j]) }
        }
    }
}

/// target[r, j] += term[r, j]: the second of two terms (a float addition
/// rounds the exact sum of two floats once).
func addSecondTerm(_ term: FloatRows, into target: FloatRows, rows: Int, width: Int) {
    forEachPiece(rows: rows, width: width) { row, columns in
        let s = UnsafePointer(term.row(row)), t = target.row(row)
        for j in columns { t[j] += s[j] }
    }
}

/// A Double sum as the float nearest it and the float nearest what is left:
/// together 48 bits of it, enough for a sum over ranks to round once.
@inline(__always)
func splitExactSum(_ sum: Double) -> (high: Float, low: Float) {
    let high = Float(sum)
    return (high, high.isFinite ? Float(sum - Double(high)) : 0)
}
