// Explicit 8-lane SIMD for the few loops LLVM leaves scalar: those that mask
// one stream by another (ReLU's backward, BN's backward fused with ReLU).
// A `cond ? a : 0` in such loops compiles to a branch per element; SIMD8
// with `replacing(with:where:)` compiles to compare + blend (TOOLCHAIN §4:
// avoid pointwiseMax/clamped, which become per-lane calls).

typealias Float8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>, _ i: Int) -> Float8 {
    UnsafeRawPointer(p + i).loadUnaligned(as: Float8.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Float8.self)
}

/// g where mask > 0, else 0.
@inline(__always)
func where8(_ g: Float8, positive mask: Float8) -> Float8 {
    g.replacing(with: 0, where: mask .<= 0)
}
