import Foundation

/// A generated segmentation data set: textured shapes on textured
/// backgrounds, written in the SageMaker channel layout.
///
/// Each foreground class has its own outline and its own texture, but every
/// object (and every background) draws its two colours at random, so colour
/// alone does not tell the classes apart: a network must learn texture and
/// shape. Images vary in size (`sizes`) and hold one to three objects of
/// varied size, later ones drawn over earlier ones.
///
/// | class | outline | texture |
/// |---|---|---|
/// | 0 background | — | smooth colour gradient with grain |
/// | 1 | disc | diagonal stripes |
/// | 2 | square | checkerboard |
/// | 3 | triangle | dots |
/// | 4 | ring | horizontal stripes |
///
/// The same seed writes the same bytes.
public struct SyntheticShapes: Sendable {
    /// Class names, index = class id. Class 0 is the background.
    public static let allClassNames = ["background", "striped disc", "checkered square", "dotted triangle",
                                       "banded ring"]

    public var classCount: Int
    /// Image widths and heights are drawn from this range.
    public var sizes: ClosedRange<Int>
    public var seed: UInt64

    /// - Parameter classCount: 2 to 5, background included.
    public init(classCount: Int = 4, sizes: ClosedRange<Int> = 80...120, seed: UInt64 = 7) {
        precondition((2...Self.allClassNames.count).contains(classCount), "classCount must be 2...\(Self.allClassNames.count)")
        self.classCount = classCount
        self.sizes = sizes
        self.seed = seed
    }

    public var classNames: [String] { Array(Self.allClassNames.prefix(classCount)) }

    /// One image and its mask; `index` and `split` pick an independent stream,
    /// so any sample can be made on its own.
    public func sample(_ index: Int, split: Split) -> (image: RGBImage, mask: ClassMask) {
        var random = SplitMix64(seed: SplitMix64.mix(seed &+ UInt64(split.rawValue) << 32 &+ UInt64(index)))
        let width = Int.random(in: sizes, using: &random), height = Int.random(in: sizes, using: &random)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var labels = [UInt8](repeating: 0, count: width * height)

        // Background: a smooth blend of two random colours along a random
        // direction, plus grain.
        let (b0, b1) = (Self.randomColour(&random), Self.randomColour(&random))
        let angle = Float.random(in: 0..<(2 * .pi), using: &random)
        let (dx, dy) = (cos(angle) / Float(width), sin(angle) / Float(height))
        for y in 0..<height {
            for x in 0..<width {
                let t = 0.5 + 0.5 * sin(3 * (Float(x) * dx + Float(y) * dy) * .pi)
                let colour = b0 + (b1 - b0) * t
                Self.put(colour, grain: &random, x: x, y: y, width: width, into: &pixels)
            }
        }

        let objects = Int.random(in: 1...3, using: &random)
        let shortSide = min(width, height)
        for _ in 0..<objects {
            let label = Int.random(in: 1..<classCount, using: &random)
            let radius = Float(Int.random(in: shortSide / 5...shortSide * 2 / 5, using: &random))
            let cx = Float.random(in: radius * 0.5...Float(width) - radius * 0.5, using: &random)
            let cy = Float.random(in: radius * 0.5...Float(height) - radius * 0.5, using: &random)
            var (c0, c1) = (Self.randomColour(&random), Self.randomColour(&random))
            // Keep the texture visible: at least 90 levels between the colours.
            while Self.luminance(c0 - c1).magnitude < 90 { c1 = Self.randomColour(&random) }
            if Bool.random(using: &random) { swap(&c0, &c1) }
            let period = Int.random(in: 6...9, using: &random)
            for y in max(0, Int(cy - radius) - 1)..<min(height, Int(cy + radius) + 2) {
                for x in max(0, Int(cx - radius) - 1)..<min(width, Int(cx + radius) + 2) {
                    let (px, py) = (Float(x) + 0.5 - cx, Float(y) + 0.5 - cy)
                    guard Self.inside(label: label, px: px, py: py, radius: radius) else { continue }
                    let on = Self.texture(label: label, x: x, y: y, period: period)
                    Self.put(on ? c0 : c1, grain: &random, x: x, y: y, width: width, into: &pixels)
                    labels[y * width + x] = UInt8(label)
                }
            }
        }
        return (RGBImage(width: width, height: height, pixels: pixels), ClassMask(width: width, height: height, values: labels))
    }

    public enum Split: Int, Sendable { case train = 1, validation = 2 }

    /// Writes `train/`, `train_annotation/`, `validation/`,
    /// `validation_annotation/` (JPEG images, PNG masks) and `label_map/`
    /// under `directory`. Each file is written atomically.
    public func write(to directory: URL, trainCount: Int, validationCount: Int) throws {
        let manager = FileManager.default
        let labelMap = "{\"map\": {" + (0..<classCount).map { "\"\($0)\": \($0)" }.joined(separator: ", ") + "}}\n"
        for (split, name, count) in [(Split.train, "train", trainCount), (.validation, "validation", validationCount)] {
            let images = directory.appendingPathComponent(name), masks = directory.appendingPathComponent(name + "_annotation")
            try manager.createDirectory(at: images, withIntermediateDirectories: true)
            try manager.createDirectory(at: masks, withIntermediateDirectories: true)
            for index in 0..<count {
                let (image, mask) = sample(index, split: split)
                let base = String(format: "%@_%04d", name, index)
                try writeAtomically(ImageCodec.encodeJPEG(rgb: image, quality: 92), to: images.appendingPathComponent(base + ".jpg"))
                try writeAtomically(ImageCodec.encodePNG(mask: mask), to: masks.appendingPathComponent(base + ".png"))
            }
            let labelMaps = directory.appendingPathComponent("label_map")
            try manager.createDirectory(at: labelMaps, withIntermediateDirectories: true)
            try writeAtomically(Data(labelMap.utf8), to: labelMaps.appendingPathComponent("\(name)_label_map.json"))
        }
    }

    static func inside(label: Int, px: Float, py: Float, radius: Float) -> Bool {
        switch label {
        case 1: return px * px + py * py <= radius * radius
        case 2: return abs(px) <= radius * 0.85 && abs(py) <= radius * 0.85
        case 3: // An upward triangle inscribed in the circle.
            let top = -radius, bottom = radius * 0.6
            guard py >= top && py <= bottom else { return false }
            let halfWidth = (py - top) / (bottom - top) * radius * 0.95
            return abs(px) <= halfWidth
        default:
            let d2 = px * px + py * py
            return d2 <= radius * radius && d2 >= radius * radius * 0.3
        }
    }

    static func texture(label: Int, x: Int, y: Int, period: Int) -> Bool {
        switch label {
        case 1: return (x + y) % period < period / 2
        case 2: let cell = period / 2 + 1; return (x / cell + y / cell) % 2 == 0
        case 3:
            let (u, v) = (x % period - period / 2, y % period - period / 2)
            return u * u + v * v <= period * period / 9
        default: return y % period < period / 2
        }
    }

    static func randomColour(_ random: inout SplitMix64) -> SIMD3<Float> {
        SIMD3(Float.random(in: 0...255, using: &random), Float.random(in: 0...255, using: &random),
              Float.random(in: 0...255, using: &random))
    }

    static func luminance(_ c: SIMD3<Float>) -> Float { 0.299 * c.x + 0.587 * c.y + 0.114 * c.z }

    @inline(__always)
    static func put(_ colour: SIMD3<Float>, grain random: inout SplitMix64, x: Int, y: Int, width: Int,
                    into pixels: inout [UInt8]) {
        let noise = Float(Int(truncatingIfNeeded: random.next() % 25) - 12)
        let i = (y * width + x) * 3
        for c in 0..<3 { pixels[i + c] = UInt8(max(0, min(255, colour[c] + noise)).rounded()) }
    }
}
