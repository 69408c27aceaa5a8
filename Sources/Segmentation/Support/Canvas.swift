/// A small RGB drawing surface for the pictures the library makes
/// (training curves, prediction overlays): filled rectangles, thick lines and
/// text in a built-in 5×7 bitmap font.
struct Canvas {
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
}

/// A 5×7 bitmap font: each glyph is seven rows of five bits, leftmost pixel in bit 4.
enum Font {
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
        "b": [16, 16, 22, 25, 17, 17, 30], "f": [6, 9, 8, 28, 8, 8, 8], "g": [0, 0, 15, 17, 15, 1, 14],
        "j": [2, 0, 6, 2, 2, 18, 12], "k": [16, 16, 18, 20, 24, 20, 18], "q": [0, 0, 13, 19, 15, 1, 1],
        "w": [0, 0, 17, 17, 21, 21, 10], "z": [0, 0, 31, 2, 4, 8, 31], ":": [0, 12, 12, 0, 12, 12, 0],
        "_": [0, 0, 0, 0, 0, 0, 31], "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8],
        "/": [0, 1, 2, 4, 8, 16, 0], "%": [24, 25, 2, 4, 8, 19, 3],
        "I": [14, 4, 4, 4, 4, 4, 14], "O": [14, 17, 17, 17, 17, 17, 14], "U": [17, 17, 17, 17, 17, 17, 14],
    ]
}
