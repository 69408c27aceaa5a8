/// A single-channel 8-bit annotation: one value per pixel, row-major
/// (`values[y * width + x]`).
///
/// Decoded from a PNG, a value is the raw gray level or palette index — the
/// palette's colours are never looked at. The label map (SPEC §2) turns these
/// values into class ids; 255 is the ignore label.
public struct ClassMask: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// height × width bytes.
    public var values: [UInt8]

    public init(width: Int, height: Int, values: [UInt8]) {
        precondition(width > 0 && height > 0, "ClassMask must be at least 1×1, got \(width)×\(height)")
        precondition(values.count == width * height,
                     "ClassMask \(width)×\(height) needs \(width * height) values, got \(values.count)")
        self.width = width
        self.height = height
        self.values = values
    }

    /// The value at column `x`, row `y`.
    public subscript(x x: Int, y y: Int) -> UInt8 {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
        return values[y * width + x]
    }
}
