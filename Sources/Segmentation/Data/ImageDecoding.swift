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
    /// A baseline JPEG of `image` (quality 1–100); for generated data sets.
    public static func encodeJPEG(rgb image: RGBImage, quality: Int = 90) throws -> Data {
        try JPEG.encode(image, quality: quality)
    }

    public static func encodePNG(mask: ClassMask) throws -> Data {
        try PNG.encode(mask.values, width: mask.width, height: mask.height, channels: 1)
    }

    /// An 8-bit RGB PNG of the image.
    public static func encodePNG(rgb image: RGBImage) throws -> Data {
        try PNG.encode(image.pixels, width: image.width, height: image.height, channels: 3)
    }

    // MARK: Helpers

    static func read(_ url: URL) throws -> Data {
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
