import Foundation
/// Draws `training-curves.png` (SPEC §6) with no plotting library: two
/// panels, train loss per epoch on the left, validation mIOU and pixel
/// accuracy on the right, with axes, tick labels and a legend in a built-in
/// 5×7 bitmap font.
public enum TrainingCurves {
    public static let width = 960
    public static let height = 420

    /// One point per epoch; `loss`, `meanIoU` and `pixelAccuracy` are aligned by epoch (0-based).
    public static func render(loss: [Double], meanIoU: [Double], pixelAccuracy: [Double]) -> RGBImage {
        var canvas = Canvas(width: width, height: height)
        let blue: SIMD3<UInt8> = [31, 119, 180], orange: SIMD3<UInt8> = [255, 127, 14], green: SIMD3<UInt8> = [44, 160, 44]
        let lossTop = max(loss.filter(\.isFinite).max() ?? 1, 1e-6) * 1.1
        canvas.panel(x: 70, y: 40, width: 380, height: 320, title: "train loss", series: [(loss, blue)], top: lossTop)
        canvas.panel(x: 550, y: 40, width: 380, height: 320, title: "validation", series: [(meanIoU, orange), (pixelAccuracy, green)], top: 1)
        canvas.text("mIOU", x: 560, y: 50, color: orange)
        canvas.text("pixel acc", x: 560, y: 70, color: green)
        return RGBImage(width: width, height: height, pixels: canvas.pixels)
    }

    /// The PNG bytes of `render`.
    public static func png(loss: [Double], meanIoU: [Double], pixelAccuracy: [Double]) throws -> [UInt8] {
        [UInt8](try ImageCodec.encodePNG(rgb: render(loss: loss, meanIoU: meanIoU, pixelAccuracy: pixelAccuracy)))
    }
}

private struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func set(_ x: Int, _ y: Int, _ color: SIMD3<UInt8>) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.x; pixels[i + 1] = color.y; pixels[i + 2] = color.z
    }

    mutating func rectangle(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ color: SIMD3<UInt8>) {
        for yy in y..<(y + h) { for xx in x..<(x + w) { set(xx, yy, color) } }
    }

    /// A line `thickness` pixels wide (Bresenham, squares along the path).
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ color: SIMD3<UInt8>, thickness: Int = 2) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            rectangle(x - thickness / 2, y - thickness / 2, thickness, thickness, color)
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    mutating func text(_ string: String, x: Int, y: Int, color: SIMD3<UInt8> = [40, 40, 40], scale: Int = 2) {
        var cursor = x
        for character in string {
            let rows = Font.glyphs[character] ?? Font.glyphs["?"]!
            for (row, bits) in rows.enumerated() {
                for column in 0..<5 where bits & (1 << (4 - column)) != 0 {
                    rectangle(cursor + column * scale, y + row * scale, scale, scale, color)
                }
            }
            cursor += 6 * scale
        }
    }

    func textWidth(_ string: String, scale: Int = 2) -> Int { string.count * 6 * scale }

    mutating func panel(
        x: Int, y: Int, width w: Int, height h: Int, title: String,
        series: [([Double], SIMD3<UInt8>)], top: Double
    ) {
        let axis: SIMD3<UInt8> = [90, 90, 90], grid: SIMD3<UInt8> = [225, 225, 225]
        text(title, x: x + (w - textWidth(title)) / 2, y: y - 30)
        let epochs = series.map(\.0.count).max() ?? 0
        // horizontal grid and y labels at 0, ¼, ½, ¾, 1 of the range
        for step in 0...4 {
            let value = top * Double(step) / 4
            let py = y + h - Int((Double(h) * Double(step) / 4).rounded())
            if step > 0 { line(x, py, x + w, py, grid, thickness: 1) }
            let label = String(format: top >= 10 ? "%.0f" : "%.2f", value)
            text(label, x: x - textWidth(label) - 8, y: py - 7)
        }
        line(x, y, x, y + h, axis)
        line(x, y + h, x + w, y + h, axis)
        func px(_ epoch: Int) -> Int { epochs <= 1 ? x + w / 2 : x + Int((Double(w) * Double(epoch) / Double(epochs - 1)).rounded()) }
        // x labels: at most ~10 epoch numbers
        let every = max(1, (epochs + 9) / 10)
        for epoch in stride(from: 0, to: epochs, by: every) {
            let label = "\(epoch)"
            line(px(epoch), y + h, px(epoch), y + h + 5, axis)
            text(label, x: px(epoch) - textWidth(label) / 2, y: y + h + 10)
        }
        text("epoch", x: x + (w - textWidth("epoch")) / 2, y: y + h + 32)
        for (values, color) in series {
            func py(_ value: Double) -> Int {
                let clamped = value.isFinite ? min(max(value, 0), top) : top
                return y + h - Int((Double(h) * clamped / top).rounded())
            }
            for epoch in values.indices {
                if epoch > 0 { line(px(epoch - 1), py(values[epoch - 1]), px(epoch), py(values[epoch]), color) }
                rectangle(px(epoch) - 3, py(values[epoch]) - 3, 7, 7, color)
            }
        }
    }
}

/// A 5×7 bitmap font: each glyph is seven rows of five bits, leftmost pixel in bit 4.
private enum Font {
    static let glyphs: [Character: [UInt8]] = [
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
        "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
        "9": [14, 17, 17, 15, 1, 2, 12], ".": [0, 0, 0, 0, 0, 12, 12], "-": [0, 0, 0, 31, 0, 0, 0],
        " ": [0, 0, 0, 0, 0, 0, 0], "?": [14, 17, 1, 2, 4, 0, 4],
        "a": [0, 0, 14, 1, 15, 17, 15], "c": [0, 0, 14, 16, 16, 17, 14], "d": [1, 1, 13, 19, 17, 17, 15],
        "e": [0, 0, 14, 17, 31, 16, 14], "h": [16, 16, 22, 25, 17, 17, 17], "i": [4, 0, 12, 4, 4, 4, 14],
        "l": [12, 4, 4, 4, 4, 4, 14], "m": [0, 0, 26, 21, 21, 17, 17], "n": [0, 0, 22, 25, 17, 17, 17],
        "o": [0, 0, 14, 17, 17, 17, 14], "p": [0, 0, 30, 17, 30, 16, 16], "r": [0, 0, 22, 25, 16, 16, 16],
        "s": [0, 0, 14, 16, 14, 1, 30], "t": [8, 8, 28, 8, 8, 9, 6], "u": [0, 0, 17, 17, 17, 19, 13],
        "v": [0, 0, 17, 17, 17, 10, 4], "x": [0, 0, 17, 10, 4, 10, 17], "y": [0, 0, 17, 17, 15, 1, 14],
        "I": [14, 4, 4, 4, 4, 4, 14], "O": [14, 17, 17, 17, 17, 17, 14], "U": [17, 17, 17, 17, 17, 17, 14],
    ]
}
