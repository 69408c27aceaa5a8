import FuzzSupport
import Segmentation

// JPEG bytes through ImageCodec into CImageCodec and libjpeg, with the
// default 100-megapixel limit (a declared size above it is refused before any
// buffer is allocated; below it, up to 300 MB of RGB is a legitimate answer),
// and as an annotation, which a JPEG may never be.
fuzz { data in
    _ = try? ImageCodec.decodeImage(data, file: "fuzz.jpg")
    _ = try? ImageCodec.decodeAnnotation(data, file: "fuzz.jpg")
}
