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

extension Canvas {
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

