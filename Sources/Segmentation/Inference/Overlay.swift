/// A picture for people: the image with each predicted class tinted in its
/// colour, and a legend strip below naming the classes that appear.
public enum Overlay {
    /// Class colours: the PASCAL VOC palette (bit-interleaved class id), so
    /// VOC-trained models look familiar; the same id always gets the same colour.
    public static func colour(ofClass id: Int) -> SIMD3<UInt8> {
        var (r, g, b) = (0, 0, 0)
        var c = id
        for shift in stride(from: 7, through: 0, by: -1) {
            r |= (c & 1) << shift
            g |= (c >> 1 & 1) << shift
            b |= (c >> 2 & 1) << shift
            c >>= 3
            if c == 0 { break }
        }
        return SIMD3(UInt8(r), UInt8(g), UInt8(b))
    }

    /// Blends `mask` over `image` (which must have the same size) with
    /// `opacity`; pixels of `backgroundClass` stay untinted. The legend lists
    /// each class present with its colour, id and name (from `classNames`
    /// when given), wrapping to as many rows as it needs. The picture is
    /// widened (white on the right) when the image is narrower than 64 pixels
    /// or than the longest legend entry, so the legend stays legible.
    public static func render(image: RGBImage, mask: ClassMask, classNames: [String] = [], backgroundClass: Int? = 0,
                              opacity: Float = 0.5) -> RGBImage {
        precondition(image.width == mask.width && image.height == mask.height,
                     "overlay needs a mask of the image's size: image \(image.width)×\(image.height), mask \(mask.width)×\(mask.height)")
        var present = [Bool](repeating: false, count: 256)
        for value in mask.values { present[Int(value)] = true }
        let classes = (0..<256).filter { present[$0] }
        let labels = classes.map { id in id < classNames.count ? "\(id) \(classNames[id])" : "\(id)" }

        // Legend layout: entries of swatch + text, wrapped to the image width.
        let scale = 1, rowHeight = 14, padding = 4
        let entryWidths = labels.map { 10 + 4 + $0.count * 6 * scale + 12 }
        var rows = 1, cursor = padding
        let width = max(image.width, 64, (entryWidths.max() ?? 0) + 2 * padding)
        for w in entryWidths {
            if cursor + w > width && cursor > padding { rows += 1; cursor = padding }
            cursor += w
        }
        let legendHeight = rows * rowHeight + padding
        var canvas = Canvas(width: width, height: image.height + legendHeight)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let i = y * image.width + x, id = Int(mask.values[i])
                let pixel = SIMD3<Float>(Float(image.pixels[i * 3]), Float(image.pixels[i * 3 + 1]), Float(image.pixels[i * 3 + 2]))
                guard id != backgroundClass else { canvas.set(x, y, image[x: x, y: y]); continue }
                let tint = SIMD3<Float>(colour(ofClass: id))
                let blended = pixel * (1 - opacity) + tint * opacity
                canvas.set(x, y, SIMD3<UInt8>(blended.rounded(.toNearestOrAwayFromZero)))
            }
        }
        var (x, y) = (padding, image.height + padding)
        for (label, (id, w)) in zip(labels, zip(classes, entryWidths)) {
            if x + w > width && x > padding { x = padding; y += rowHeight }
            canvas.rectangle(x - 1, y - 1, 12, 12, [40, 40, 40])
            canvas.rectangle(x, y, 10, 10, colour(ofClass: id))
            canvas.text(label, x: x + 14, y: y + 2, scale: scale)
            x += w
        }
        return RGBImage(width: canvas.width, height: canvas.height, pixels: canvas.pixels)
    }
}
