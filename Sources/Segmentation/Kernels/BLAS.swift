import COpenBLAS

/// The only door to OpenBLAS.
///
/// Layout: every matrix is **row-major**; `lda`, `ldb`, `ldc` are row strides
/// in elements. `C[m, n] = alpha · op(A)[m, k] × op(B)[k, n] + beta · C`, where
/// `op(A)` is `A` (stored `[m, lda]`) or `Aᵀ` (stored `[k, lda]`), likewise B.
///
/// Threads: OpenBLAS is set to one thread before the first call, and
/// `parallelSgemm` splits one product over our own workers (Docs/threading.md).
public enum BLAS {
    public enum Transpose: Sendable {
        case none, transposed

        var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    private static let singleThreaded: Void = {
        openblas_set_num_threads(1)
    }()

    /// OpenBLAS's own description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Cooperlake MAX_THREADS=64".
    public static var configuration: String {
        String(cString: openblas_get_config()) + " core=" + String(cString: openblas_get_corename())
    }

    /// One single-threaded sgemm.
    @inline(__always)
    static func sgemm(
        _ transposeA: Transpose, _ transposeB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreaded
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, transposeA.cblas, transposeB.cblas,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same product split over the workers: by columns of C when N is the
    /// larger side, else by rows. Each worker calls single-threaded sgemm on
    /// its block, so results do not depend on thread timing. The blocks start
    /// at multiples of 64 rows or columns, so every element falls in the same
    /// place of OpenBLAS's register tiles (16 × 4 here) as in the unsplit
    /// product, and gets the same bits: a lane's unsplit product and a shared
    /// image's split one agree (split-invariant gradients rely on it; tested).
    static func parallelSgemm(
        _ transposeA: Transpose, _ transposeB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // Below ~4 MFLOP a split costs more than it gains.
        let workers = Parallelism.workerCount
        if workers == 1 || m * n * k < 2_000_000 || Parallelism.isInsideParallelRegion {
            sgemm(transposeA, transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let a = SendablePointer(UnsafeMutablePointer(mutating: a))
        let b = SendablePointer(UnsafeMutablePointer(mutating: b))
        let c = SendablePointer(c)
        if n >= m {
            let blocks = (n + 63) / 64
            parallelFor(blocks, chunks: workers) { range in
                let j0 = range.lowerBound * 64
                let j1 = min(n, range.upperBound * 64)
                // B columns j0..<j1: B + j0 when stored [k, ldb], B + j0·ldb when stored [n, ldb].
                let bOffset = transposeB == .none ? j0 : j0 * ldb
                sgemm(transposeA, transposeB, m: m, n: j1 - j0, k: k, alpha: alpha,
                      a: a.base, lda: lda, b: b.base + bOffset, ldb: ldb,
                      beta: beta, c: c.base + j0, ldc: ldc)
            }
        } else {
            let blocks = (m + 63) / 64
            parallelFor(blocks, chunks: workers) { range in
                let i0 = range.lowerBound * 64
                let i1 = min(m, range.upperBound * 64)
                // A rows i0..<i1: A + i0·lda when stored [m, lda], A + i0 when stored [k, lda].
                let aOffset = transposeA == .none ? i0 * lda : i0
                sgemm(transposeA, transposeB, m: i1 - i0, n: n, k: k, alpha: alpha,
                      a: a.base + aOffset, lda: lda, b: b.base, ldb: ldb,
                      beta: beta, c: c.base + i0 * ldc, ldc: ldc)
            }
        }
    }

    /// Runs `body` with OpenBLAS using `threads` threads of its own, then
    /// returns it to one. Only for measuring the bare-sgemm reference in
    /// `segment bench`; library kernels never call it.
    public static func withOpenBLASThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        _ = singleThreaded
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// A bare row-major, non-transposed sgemm on caller-owned buffers, through
    /// OpenBLAS with whatever thread count is in force. The reference that
    /// `segment bench` compares layers against.
    public static func referenceSgemm(
        _ transposeA: Transpose, _ transposeB: Transpose, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    ) {
        let lda = transposeA == .none ? k : m
        let ldb = transposeB == .none ? n : k
        cblas_sgemm(
            CblasRowMajor, transposeA.cblas, transposeB.cblas,
            Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(n))
    }
}
