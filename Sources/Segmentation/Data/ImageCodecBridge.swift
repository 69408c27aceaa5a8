import CImageCodec
import Foundation

// The only Swift file that touches CImageCodec, the C shim around libjpeg and
// libpng (Sources/CImageCodec): libjpeg's error handler must longjmp, which
// only C can do, and libpng's classic API keeps palette indices. Swift never
// imports CJPEG or CPNG itself.

/// JPEG decoding through CImageCodec (libjpeg behind setjmp; see
/// Sources/CImageCodec). Swift never imports CJPEG itself: libjpeg's error
/// handler must longjmp, which only C can do.
enum JPEG {
    /// height × width × 3 RGB bytes → baseline JPEG file bytes.
    static func encode(_ image: RGBImage, quality: Int) throws -> Data {
        var jpeg: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(SEG_CODEC_MESSAGE_CAPACITY))
        let status = image.pixels.withUnsafeBufferPointer { buffer in
            seg_jpeg_encode(buffer.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality), &jpeg, &size,
                            &message, message.count)
        }
        guard status == SEG_CODEC_OK, let jpeg else {
            throw ImageError.encodingFailed(reason: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return Data(bytesNoCopy: jpeg, count: size, deallocator: .custom { pointer, _ in seg_codec_free(pointer) })
    }

    /// Baseline, progressive or arithmetic-coded JPEG → 8-bit RGB. Grayscale
    /// is replicated; CMYK/YCCK are converted with the Adobe convention.
    static func decodeRGB(_ data: Data, file: String, maximumPixels: Int) throws -> RGBImage {
        let decoded = try decodeWithCodec(data, file: file, format: .jpeg, maximumPixels: maximumPixels, channels: 3) {
            seg_jpeg_decode_rgb($0, $1, $2, $3, $4, $5)
        }
        return RGBImage(width: decoded.width, height: decoded.height, pixels: decoded.pixels)
    }
}


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

// MARK: - The call into CImageCodec

/// What a CImageCodec decoder returned: its pixels moved into an array.
struct DecodedPixels {
    var width: Int
    var height: Int
    var pixels: [UInt8]
}

/// Runs one CImageCodec decoder over the bytes of `data` and moves the pixels
/// it allocated into an array, or throws the ImageError its status means.
/// This and `PNG.encode` are the only places raw memory of the image
/// libraries is touched.
func decodeWithCodec(
    _ data: Data, file: String, format: ImageFormat, maximumPixels: Int, channels: Int,
    _ decode: (UnsafePointer<UInt8>, Int, UInt64, UnsafeMutablePointer<seg_codec_image>,
               UnsafeMutablePointer<CChar>, Int) -> seg_codec_status
) throws -> DecodedPixels {
    precondition(!data.isEmpty, "an empty file has no format and never reaches a decoder")
    var image = seg_codec_image()
    var message = [CChar](repeating: 0, count: Int(SEG_CODEC_MESSAGE_CAPACITY))
    let status = data.withUnsafeBytes { raw in
        decode(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, UInt64(maximumPixels), &image,
               &message, message.count)
    }
    let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    switch status {
    case SEG_CODEC_OK:
        defer { seg_codec_free(image.pixels) }
        precondition(Int(image.channels) == channels, "CImageCodec returned \(image.channels) channels, expected \(channels)")
        let (width, height) = (Int(image.width), Int(image.height))
        let pixels = Array(UnsafeBufferPointer(start: image.pixels, count: width * height * channels))
        return DecodedPixels(width: width, height: height, pixels: pixels)
    case SEG_CODEC_TOO_LARGE:
        throw ImageError.tooLarge(file: file, width: Int(image.width), height: Int(image.height),
                                  maximumPixels: maximumPixels)
    case SEG_CODEC_NOT_SINGLE_CHANNEL:
        throw ImageError.annotationNotSingleChannel(file: file, layout: text)
    case SEG_CODEC_UNSUPPORTED:
        throw ImageError.unsupportedContent(file: file, reason: text)
    case SEG_CODEC_OUT_OF_MEMORY:
        throw ImageError.unreadable(file: file, reason: text)
    default:
        throw ImageError.corrupt(file: file, format: format, reason: libraryReason(text))
    }
}

/// A library message as the end of "corrupt JPEG data: …": libjpeg's own
/// "Corrupt JPEG data: " prefix dropped and a capitalised first word lowered
/// ("Premature end of JPEG file" → "premature end of JPEG file"; "IDAT: CRC
/// error" stays as it is).
private func libraryReason(_ text: String) -> String {
    var reason = Substring(text.isEmpty ? "unknown decoder error" : text)
    if reason.hasPrefix("Corrupt JPEG data: ") { reason = reason.dropFirst("Corrupt JPEG data: ".count) }
    if let first = reason.first, first.isUppercase, reason.dropFirst().first?.isLowercase == true {
        return first.lowercased() + reason.dropFirst()
    }
    return String(reason)
}
