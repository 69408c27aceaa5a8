/// A small, fast, seedable random number generator (Steele, Lea & Flood,
/// "Fast splittable pseudorandom number generators", 2014).
///
/// Every random choice in the library takes a generator `inout`, so a run is
/// reproducible from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    public private(set) var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function: a bijective 64-bit hash. Used directly
    /// as a counter-based generator where elements must be drawn in parallel
    /// (`mix(seed &+ index)` gives the same stream whatever the thread split).
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Float in [0, 1) from the top 24 bits of a 64-bit value.
    @inline(__always)
    public static func unitFloat(_ bits: UInt64) -> Float {
        Float(bits >> 40) * 0x1p-24
    }
}
