import FuzzSupport
import Segmentation

// PNG bytes through ImageCodec into CImageCodec and libpng, in both modes:
// as an image (RGB) and as an annotation (class ids).
fuzz { data in
    _ = try? ImageCodec.decodeImage(data, file: "fuzz.png")
    _ = try? ImageCodec.decodeAnnotation(data, file: "fuzz.png")
}
