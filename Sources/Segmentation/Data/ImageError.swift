/// Errors decoding or encoding an image or annotation. Each names the file
/// and says what is wrong with it, so a user can tell which file to fix.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all.
    case unreadable(file: String, reason: String)
    /// Neither a JPEG nor a PNG signature; `detected` names the format when
    /// the signature is a known one ("GIF", "BMP", …) and is nil otherwise.
    case unsupportedFormat(file: String, detected: String?, leadingBytes: [UInt8])
    /// libjpeg or libpng found the file damaged (an error, or a warning such
    /// as "premature end of data segment" or a CRC error).
    case corrupt(file: String, format: ImageFormat, reason: String)
    /// The header declares more pixels than the limit allows (or, for a PNG,
    /// absurdly long rows); nothing was allocated for them.
    case tooLarge(file: String, width: Int, height: Int, maximumPixels: Int)
    /// A well-formed file in a form that is not accepted (a 16-bit or JPEG
    /// annotation, an unknown JPEG colour space).
    case unsupportedContent(file: String, reason: String)
    /// An annotation with colour or alpha channels; `layout` is "RGB",
    /// "RGBA" or "grayscale+alpha".
    case annotationNotSingleChannel(file: String, layout: String)
    /// Encoding failed (libpng's reason).
    case encodingFailed(reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read image: \(reason)"
        case let .unsupportedFormat(file, detected, leadingBytes):
            let supported = "supported image formats are JPEG and PNG (recognised by their signatures, not the file extension)"
            if leadingBytes.isEmpty { return "\(file): the file is empty; \(supported)" }
            if let detected { return "\(file): is a \(detected) file; \(supported)" }
            let hex = leadingBytes.map { String($0, radix: 16, uppercase: true).leftPadded(to: 2) }.joined(separator: " ")
            return "\(file): is neither JPEG nor PNG (it starts with \(hex)); \(supported)"
        case let .corrupt(file, format, reason):
            return "\(file): corrupt \(format.rawValue) data: \(reason)"
        case let .tooLarge(file, width, height, maximumPixels):
            let limit = maximumPixels % 1_000_000 == 0
                ? "the \(maximumPixels / 1_000_000)-megapixel limit" : "the limit of \(maximumPixels) pixels"
            return "\(file): declared size \(width)×\(height) exceeds \(limit)"
                + (width * height <= maximumPixels ? " (its rows would be absurdly long)" : "")
        case let .unsupportedContent(file, reason):
            return "\(file): \(reason)"
        case let .annotationNotSingleChannel(file, layout):
            return "\(file): annotation is \(layout == "RGB" || layout == "RGBA" ? "an" : "a") \(layout) PNG; "
                + "annotations must be single-channel 8-bit PNGs (grayscale or palette) whose values are class ids — "
                + "if the channels are equal, save it as grayscale (e.g. `convert in.png -colorspace gray out.png`); "
                + "if classes are colours, map each colour to its id"
        case let .encodingFailed(reason):
            return "cannot encode PNG: \(reason)"
        }
    }
}

/// The image formats the decoder accepts, told apart by their signatures.
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg = "JPEG"
    case png = "PNG"
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
