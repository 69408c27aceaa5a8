import CImageCodec
import Foundation

/// PNG decoding (libpng's classic API in CImageCodec) and encoding (libpng's
/// simplified API, also there).
///
/// Label masks need the classic API: decoded without `png_set_palette_to_rgb`,
/// a palette PNG gives its indices (0, 1, 15, 255 stay 0, 1, 15, 255), which
/// the simplified API does not promise.
enum PNG {
    /// Any PNG → 8-bit RGB: gray replicated, alpha dropped, 16-bit → high
    /// byte, palette → its colours.
    static func decodeRGB(_ data: Data, file: String, maximumPixels: Int) throws -> RGBImage {
        let decoded = try decodeWithCodec(data, file: file, format: .png, maximumPixels: maximumPixels, channels: 3) {
            seg_png_decode($0, $1, SEG_PNG_RGB, $2, $3, $4, $5)
        }
        return RGBImage(width: decoded.width, height: decoded.height, pixels: decoded.pixels)
    }

    /// A grayscale or palette PNG of 1–8 bits → its raw values.
    static func decodeClassIDs(_ data: Data, file: String, maximumPixels: Int) throws -> ClassMask {
        let decoded = try decodeWithCodec(data, file: file, format: .png, maximumPixels: maximumPixels, channels: 1) {
            seg_png_decode($0, $1, SEG_PNG_CLASS_IDS, $2, $3, $4, $5)
        }
        return ClassMask(width: decoded.width, height: decoded.height, values: decoded.pixels)
    }

    /// height × width × channels bytes (1: gray, 3: RGB) → PNG file bytes.
    static func encode(_ pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> Data {
        precondition(pixels.count == width * height * channels, "PNG.encode: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        guard width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.encodingFailed(reason: "\(width)×\(height) is larger than a PNG can be")
        }
        var png: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(SEG_CODEC_MESSAGE_CAPACITY))
        let status = pixels.withUnsafeBufferPointer { buffer in
            seg_png_encode(buffer.baseAddress, UInt32(width), UInt32(height), UInt32(channels), &png, &size,
                           &message, message.count)
        }
        guard status == SEG_CODEC_OK, let png else {
            throw ImageError.encodingFailed(reason: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return Data(bytesNoCopy: png, count: size, deallocator: .custom { pointer, _ in seg_codec_free(pointer) })
    }
}
