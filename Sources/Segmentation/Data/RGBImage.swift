/// An 8-bit RGB image as decoded from a JPEG or PNG file.
///
/// Layout: HWC, row-major, interleaved — the byte for channel `c` (0 R, 1 G,
/// 2 B) of the pixel at column `x`, row `y` is `pixels[(y * width + x) * 3 + c]`.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// height × width × 3 bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "RGBImage must be at least 1×1, got \(width)×\(height)")
        precondition(pixels.count == width * height * 3,
                     "RGBImage \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The (R, G, B) bytes of the pixel at column `x`, row `y`.
    public subscript(x x: Int, y y: Int) -> SIMD3<UInt8> {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)×\(height)")
        let index = (y * width + x) * 3
        return SIMD3(pixels[index], pixels[index + 1], pixels[index + 2])
    }
}
