import CImageCodec
import Foundation

/// Decoding of training images and annotations, and PNG encoding of masks and
/// overlays (SPEC §2 "Images" and "Annotations").
///
/// - Images: JPEG or PNG, told apart by their signatures (never the file
///   extension), always returned as 8-bit RGB — grayscale replicated, alpha
///   dropped, 16-bit reduced to its high byte, palettes expanded, CMYK
///   converted with the Adobe convention.
/// - Annotations: single-channel 8-bit PNG, grayscale or palette; the value is
///   the gray level or the palette index. RGB, RGBA and gray+alpha PNGs, 16-bit
///   PNGs and JPEGs are refused with an error that says so.
/// - Damaged files are errors, never silently repaired: libjpeg's warnings
///   (premature end of data, corrupt data) and libpng's CRC errors, benign
///   errors and warnings all fail the decode.
/// - A declared width × height above `maximumPixels` is refused before any
///   pixel buffer is allocated.
public enum ImageCodec {
    /// 100 megapixels, the SPEC's default limit on a declared image size.
    public static let defaultMaximumPixels = 100_000_000

    /// The format `data` starts with, or nil if it is neither.
    public static func format(of data: Data) -> ImageFormat? {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    // MARK: Images

    /// Decodes a JPEG or PNG to 8-bit RGB; `file` names it in errors.
    public static func decodeImage(_ data: Data, file: String,
                                   maximumPixels: Int = defaultMaximumPixels) throws -> RGBImage {
        precondition(maximumPixels > 0, "maximumPixels must be positive, got \(maximumPixels)")
        switch try requireFormat(of: data, file: file) {
        case .jpeg: return try JPEG.decodeRGB(data, file: file, maximumPixels: maximumPixels)
        case .png: return try PNG.decodeRGB(data, file: file, maximumPixels: maximumPixels)
        }
    }

    public static func decodeImage(contentsOf url: URL, maximumPixels: Int = defaultMaximumPixels) throws -> RGBImage {
        try decodeImage(read(url), file: url.path, maximumPixels: maximumPixels)
    }

    // MARK: Annotations

    /// Decodes a single-channel PNG annotation to its raw values (gray levels
    /// or palette indices); `file` names it in errors.
    public static func decodeAnnotation(_ data: Data, file: String,
                                        maximumPixels: Int = defaultMaximumPixels) throws -> ClassMask {
        precondition(maximumPixels > 0, "maximumPixels must be positive, got \(maximumPixels)")
        switch try requireFormat(of: data, file: file) {
        case .jpeg:
            throw ImageError.unsupportedContent(
                file: file, reason: "annotation is a JPEG; annotations must be PNGs (lossy compression changes class ids)")
        case .png:
            return try PNG.decodeClassIDs(data, file: file, maximumPixels: maximumPixels)
        }
    }

    public static func decodeAnnotation(contentsOf url: URL,
                                        maximumPixels: Int = defaultMaximumPixels) throws -> ClassMask {
        try decodeAnnotation(read(url), file: url.path, maximumPixels: maximumPixels)
    }

    // MARK: Encoding

    /// An 8-bit grayscale PNG of the mask's values.
    public static func encodePNG(mask: ClassMask) throws -> Data {
        try PNG.encode(mask.values, width: mask.width, height: mask.height, channels: 1)
    }

    /// An 8-bit RGB PNG of the image.
    public static func encodePNG(rgb image: RGBImage) throws -> Data {
        try PNG.encode(image.pixels, width: image.width, height: image.height, channels: 3)
    }

    // MARK: Helpers

    private static func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImageError.unreadable(file: url.path, reason: (error as NSError).localizedDescription)
        }
    }

    private static func requireFormat(of data: Data, file: String) throws -> ImageFormat {
        if let format = format(of: data) { return format }
        let known: [(signature: [UInt8], name: String)] = [
            (Array("GIF8".utf8), "GIF"), ([0x42, 0x4D], "BMP"), ([0x49, 0x49, 0x2A, 0x00], "TIFF"),
            ([0x4D, 0x4D, 0x00, 0x2A], "TIFF"), ([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20], "JPEG 2000"),
        ]
        var detected = known.first { data.starts(with: $0.signature) }?.name
        if data.count >= 12, data.starts(with: Array("RIFF".utf8)), data.dropFirst(8).starts(with: Array("WEBP".utf8)) {
            detected = "WebP"
        }
        throw ImageError.unsupportedFormat(file: file, detected: detected, leadingBytes: Array(data.prefix(8)))
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
