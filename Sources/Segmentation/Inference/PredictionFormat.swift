import Foundation

/// The answers SageMaker's semantic segmentation gives (SPEC §8): a class-id
/// mask PNG, or the probabilities as one RecordIO-protobuf record.
public enum PredictionFormat: String, Sendable, CaseIterable {
    case png = "image/png"
    case recordIOProtobuf = "application/x-recordio-protobuf"

    /// A content type naming one format; `application/x-protobuf` is an
    /// alias of the recordio-protobuf type. Parameters and case are ignored.
    public init?(contentType: String) {
        switch mediaType(contentType) {
        case "image/png": self = .png
        case ProbabilityRecord.contentType, ProbabilityRecord.contentTypeAlias: self = .recordIOProtobuf
        default: return nil
        }
    }

    /// The format an HTTP `Accept` header asks for: the first media range we
    /// can serve, in the order given (positive q-values are not ranked; a
    /// range with q=0 is refused, as HTTP says). No header, an empty one,
    /// `*/*` or `image/*` → PNG; `application/*` → recordio-protobuf.
    /// nil: nothing acceptable (406).
    public init?(accept: String?) {
        guard let accept, !accept.trimmingCharacters(in: .whitespaces).isEmpty else { self = .png; return }
        for range in accept.split(separator: ",").map(String.init) where !Self.refused(range) {
            switch mediaType(range) {
            case "*/*", "image/*": self = .png; return
            case "application/*": self = .recordIOProtobuf; return
            default: if let format = PredictionFormat(contentType: range) { self = format; return }
            }
        }
        return nil
    }

    /// True for a media range with a zero quality (`image/png;q=0`).
    static func refused(_ range: String) -> Bool {
        range.split(separator: ";").dropFirst().contains { parameter in
            let parts = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return parts.count == 2 && parts[0].lowercased() == "q" && (Double(parts[1]) ?? 1) == 0
        }
    }

    /// The file extension of a written answer.
    public var fileExtension: String { self == .png ? "png" : "rec" }

    /// The encoded answer for one prediction.
    public func encode(_ prediction: Prediction) throws -> Data {
        switch self {
        case .png: return try ImageCodec.encodePNG(mask: prediction.mask)
        case .recordIOProtobuf: return try ProbabilityRecord.encode(probabilities: prediction.probabilities)
        }
    }

    /// The image types an invocation may carry; the decoder reads the format
    /// from the bytes, so any of them may hold a JPEG or a PNG.
    public static let acceptedImageTypes: Set<String> = ["image/jpeg", "image/png", "application/x-image"]
}

/// The media type of a header value, lower-cased, without parameters:
/// `"Image/PNG; q=0.9"` → `"image/png"`.
public func mediaType(_ value: String) -> String {
    let bare = value.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
    return bare.trimmingCharacters(in: .whitespaces).lowercased()
}
