import FuzzSupport
import Segmentation

// The server's Accept and Content-Type headers. The input is a header value
// (HTTP header values are bytes; Hummingbird hands them over as strings).
fuzz { data in
    let value = String(decoding: data, as: UTF8.self)
    _ = PredictionFormat(accept: value)
    _ = PredictionFormat(contentType: value)
    _ = mediaType(value)
    _ = PredictionFormat.acceptedImageTypes.contains(mediaType(value))
}
