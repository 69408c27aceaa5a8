import Foundation

// SPEC §3: the per-sample transforms that turn a decoded image and its class
// ids into a normalized CHW tensor and a label grid.
//
// A labelled sample is an `RGBImage` (HWC, UInt8) plus class ids `[UInt8]` of
// the same width × height, row-major, 255 = ignore.
//
// Conventions (what to compute is GluonCV's `_sync_transform` /
// `_val_sync_transform`, with the SPEC's deviations):
// - Image resize: Pillow's `Image.resize(size, BILINEAR)` — half-pixel
//   centers, a triangle filter whose support widens with the downscale factor
//   (so shrinking is antialiased), horizontal pass then vertical pass, 22-bit
//   fixed-point weights, each pass rounded to UInt8.
// - Label resize: Pillow's NEAREST — source index ⌊(dst + 0.5) · in / out⌋.
// - Gaussian blur: sigma = radius (Pillow's `GaussianBlur(radius)`), an exact
//   separable kernel truncated at ⌈3σ⌉ with edges clamped, rounded to UInt8
//   once at the end (Pillow approximates with three box blurs; close, not
//   byte-identical). Radius 0 is the identity.
// - Python's `random.random() < 0.5` ↔ `Double.random(in: 0..<1) < 0.5`,
//   `random.randint(a, b)` ↔ `Int.random(in: a...b)`; `round` is Python's
//   round-half-to-even.

// MARK: - Normalization

/// RGB bytes → `[3, height, width]` Float32 (CHW): `(v / 255 − mean[c]) / std[c]`.
public func normalize(_ image: RGBImage, _ normalization: Normalization) -> Tensor {
    precondition(normalization.mean.count == 3 && normalization.std.count == 3,
                 "normalization needs 3 means and 3 stds, got \(normalization.mean.count) and \(normalization.std.count)")
    let plane = image.width * image.height
    let scale = (0..<3).map { 1 / (255 * normalization.std[$0]) }
    let shift = (0..<3).map { -normalization.mean[$0] / normalization.std[$0] }
    return Tensor(shape: [3, image.height, image.width]) { output in
        image.pixels.withUnsafeBufferPointer { pixels in
            for c in 0..<3 {
                let s = scale[c], b = shift[c]
                for i in 0..<plane {
                    // (v/255 − mean)/std written as v·(1/(255·std)) − mean/std.
                    output[c * plane + i] = Float(pixels[i * 3 + c]) * s + b
                }
            }
        }
    }
}

// MARK: - Training

/// GluonCV `_sync_transform` (SPEC §3, training): mirror, random rescale of the
/// long side, pad to the crop, random crop, random blur, normalize.
public struct TrainingTransform: Sendable {
    public var baseSize: Int
    /// Side of the square output; the configuration makes it a multiple of 8.
    public var cropSize: Int
    public var normalization: Normalization

    public init(baseSize: Int, cropSize: Int, normalization: Normalization = .imageNet) {
        precondition(baseSize >= 2, "base size must be at least 2, got \(baseSize)")
        precondition(cropSize >= 1, "crop size must be positive, got \(cropSize)")
        self.baseSize = baseSize
        self.cropSize = cropSize
        self.normalization = normalization
    }

    /// The long side after rescaling is drawn from ⌊0.5·base⌋ … ⌊2.0·base⌋ inclusive.
    var longSideRange: ClosedRange<Int> { (baseSize / 2)...(baseSize * 2) }

    /// Step (2)'s random part: one draw of the long side.
    func drawLongSide(using generator: inout some RandomNumberGenerator) -> Int {
        Int.random(in: longSideRange, using: &generator)
    }

    /// Step (2)'s size: the long side becomes `longSide`, the short side
    /// `Int(short · longSide / long + 0.5)` (at least 1). A square image's
    /// width counts as the long side, as in GluonCV's `else` branch.
    static func scaledSize(width: Int, height: Int, longSide: Int) -> (width: Int, height: Int) {
        func scaled(_ short: Int, _ long: Int) -> Int {
            max(1, Int(Double(short) * Double(longSide) / Double(long) + 0.5))
        }
        if height > width {
            return (scaled(width, height), longSide)
        } else {
            return (longSide, scaled(height, width))
        }
    }

    /// Image → `[3, cropSize, cropSize]` normalized CHW; labels → cropSize² ids
    /// (255 where the crop reaches padding). Every random choice comes from
    /// `generator`, in SPEC order: mirror, long side, crop x, crop y, blur?, radius.
    public func callAsFunction(
        image: RGBImage, labels: [UInt8], using generator: inout some RandomNumberGenerator
    ) -> (image: Tensor, labels: [UInt8]) {
        var sample = LabelledSample(image: image, labels: labels)
        // (1) horizontal mirror, p = 0.5.
        if Double.random(in: 0..<1, using: &generator) < 0.5 {
            sample = sample.mirrored()
        }
        // (2) random rescale: image bilinear, labels nearest.
        let longSide = drawLongSide(using: &generator)
        let size = Self.scaledSize(width: sample.width, height: sample.height, longSide: longSide)
        sample = sample.resized(width: size.width, height: size.height)
        // (3) pad right/bottom to the crop: image 0, labels 255 (GluonCV pads the mask with 0).
        if sample.width < cropSize || sample.height < cropSize {
            sample = sample.padded(width: max(sample.width, cropSize), height: max(sample.height, cropSize))
        }
        // (4) random crop.
        let x = Int.random(in: 0...(sample.width - cropSize), using: &generator)
        let y = Int.random(in: 0...(sample.height - cropSize), using: &generator)
        sample = sample.cropped(x: x, y: y, width: cropSize, height: cropSize)
        // (5) Gaussian blur, p = 0.5, radius U[0, 1); image only.
        var cropped = sample.image
        if Double.random(in: 0..<1, using: &generator) < 0.5 {
            cropped = cropped.gaussianBlurred(radius: Double.random(in: 0..<1, using: &generator))
        }
        // (6) normalize.
        return (normalize(cropped, normalization), sample.labels)
    }
}

// MARK: - Validation

/// GluonCV `_val_sync_transform` (SPEC §3, validation). With a crop size: the
/// short side becomes the crop (long side `Int(long · crop / short + 0.5)`),
/// then a centered crop×crop window. Without: the whole image, only normalized.
public struct ValidationTransform: Sendable {
    /// nil when validation runs one image at a time (validation_mini_batch_size = 1).
    public var cropSize: Int?
    public var normalization: Normalization

    public init(cropSize: Int?, normalization: Normalization = .imageNet) {
        if let cropSize { precondition(cropSize >= 1, "crop size must be positive, got \(cropSize)") }
        self.cropSize = cropSize
        self.normalization = normalization
    }

    /// The resized size and the crop's top-left corner for an image of `width` × `height`.
    static func geometry(width: Int, height: Int, cropSize: Int) -> (width: Int, height: Int, x: Int, y: Int) {
        let (w, h): (Int, Int)
        if width > height {
            (w, h) = (Int(Double(width) * Double(cropSize) / Double(height) + 0.5), cropSize)
        } else {
            (w, h) = (cropSize, Int(Double(height) * Double(cropSize) / Double(width) + 0.5))
        }
        // Python's round() on the half-integer offset: half to even.
        let x = Int((Double(w - cropSize) / 2).rounded(.toNearestOrEven))
        let y = Int((Double(h - cropSize) / 2).rounded(.toNearestOrEven))
        return (w, h, x, y)
    }

    /// Image → `[3, H, W]` normalized CHW (H = W = cropSize when set), labels → H·W ids.
    public func callAsFunction(image: RGBImage, labels: [UInt8]) -> (image: Tensor, labels: [UInt8]) {
        guard let cropSize else {
            precondition(labels.count == image.width * image.height,
                         "labels (\(labels.count)) do not match image \(image.width)×\(image.height)")
            return (normalize(image, normalization), labels)
        }
        let g = Self.geometry(width: image.width, height: image.height, cropSize: cropSize)
        let sample = LabelledSample(image: image, labels: labels)
            .resized(width: g.width, height: g.height)
            .cropped(x: g.x, y: g.y, width: cropSize, height: cropSize)
        return (normalize(sample.image, normalization), sample.labels)
    }
}

// MARK: - A labelled sample's geometric operations

/// An image and its class ids moved together; every geometric step is applied
/// to both with the right resampling and fill.
struct LabelledSample: Sendable, Equatable {
    var image: RGBImage
    var labels: [UInt8]

    init(image: RGBImage, labels: [UInt8]) {
        precondition(labels.count == image.width * image.height,
                     "labels (\(labels.count)) do not match image \(image.width)×\(image.height)")
        self.image = image
        self.labels = labels
    }

    var width: Int { image.width }
    var height: Int { image.height }

    func mirrored() -> LabelledSample {
        LabelledSample(image: image.mirrored(), labels: LabelGrid.mirrored(labels, width: width, height: height))
    }

    /// Image bilinear, labels nearest.
    func resized(width newWidth: Int, height newHeight: Int) -> LabelledSample {
        LabelledSample(
            image: image.resized(width: newWidth, height: newHeight),
            labels: LabelGrid.resizedNearest(labels, width: width, height: height,
                                             toWidth: newWidth, toHeight: newHeight))
    }

    /// Right/bottom padding: image 0, labels 255 (ignore).
    func padded(width newWidth: Int, height newHeight: Int) -> LabelledSample {
        LabelledSample(
            image: image.padded(width: newWidth, height: newHeight),
            labels: LabelGrid.padded(labels, width: width, height: height,
                                     toWidth: newWidth, toHeight: newHeight, fill: 255))
    }

    func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> LabelledSample {
        LabelledSample(
            image: image.cropped(x: x, y: y, width: cropWidth, height: cropHeight),
            labels: LabelGrid.cropped(labels, width: width, height: height,
                                      x: x, y: y, toWidth: cropWidth, toHeight: cropHeight))
    }
}

// MARK: - Byte-grid helpers (shared by images and labels)

/// Row-major grids of `channels` interleaved bytes per pixel.
enum ByteGrid {
    static func mirrored(_ bytes: [UInt8], width: Int, height: Int, channels: Int) -> [UInt8] {
        precondition(bytes.count == width * height * channels)
        var out = [UInt8](repeating: 0, count: bytes.count)
        for y in 0..<height {
            let row = y * width
            for x in 0..<width {
                let src = (row + x) * channels, dst = (row + width - 1 - x) * channels
                for c in 0..<channels { out[dst + c] = bytes[src + c] }
            }
        }
        return out
    }

    static func padded(_ bytes: [UInt8], width: Int, height: Int, channels: Int,
                       toWidth: Int, toHeight: Int, fill: UInt8) -> [UInt8] {
        precondition(bytes.count == width * height * channels)
        precondition(toWidth >= width && toHeight >= height,
                     "cannot pad \(width)×\(height) to the smaller \(toWidth)×\(toHeight)")
        var out = [UInt8](repeating: fill, count: toWidth * toHeight * channels)
        let rowBytes = width * channels
        for y in 0..<height {
            out.replaceSubrange((y * toWidth * channels)..<(y * toWidth * channels + rowBytes),
                                with: bytes[(y * rowBytes)..<((y + 1) * rowBytes)])
        }
        return out
    }

    static func cropped(_ bytes: [UInt8], width: Int, height: Int, channels: Int,
                        x: Int, y: Int, toWidth: Int, toHeight: Int) -> [UInt8] {
        precondition(bytes.count == width * height * channels)
        precondition(x >= 0 && y >= 0 && x + toWidth <= width && y + toHeight <= height,
                     "crop \(toWidth)×\(toHeight) at (\(x), \(y)) outside \(width)×\(height)")
        var out = [UInt8]()
        out.reserveCapacity(toWidth * toHeight * channels)
        for row in y..<(y + toHeight) {
            let start = (row * width + x) * channels
            out.append(contentsOf: bytes[start..<(start + toWidth * channels)])
        }
        return out
    }
}

/// Class-id grids: `[UInt8]`, row-major, one byte per pixel.
enum LabelGrid {
    static func mirrored(_ labels: [UInt8], width: Int, height: Int) -> [UInt8] {
        ByteGrid.mirrored(labels, width: width, height: height, channels: 1)
    }

    /// Pillow NEAREST: source index ⌊(dst + 0.5) · in / out⌋, in integers as
    /// ⌊(2·dst + 1) · in / (2·out)⌋. Only copies values, never invents one.
    static func resizedNearest(_ labels: [UInt8], width: Int, height: Int, toWidth: Int, toHeight: Int) -> [UInt8] {
        precondition(labels.count == width * height)
        precondition(toWidth > 0 && toHeight > 0, "cannot resize to \(toWidth)×\(toHeight)")
        let sourceX = (0..<toWidth).map { min(width - 1, (2 * $0 + 1) * width / (2 * toWidth)) }
        var out = [UInt8](repeating: 0, count: toWidth * toHeight)
        for y in 0..<toHeight {
            let sy = min(height - 1, (2 * y + 1) * height / (2 * toHeight))
            let src = sy * width, dst = y * toWidth
            for x in 0..<toWidth { out[dst + x] = labels[src + sourceX[x]] }
        }
        return out
    }

    static func padded(_ labels: [UInt8], width: Int, height: Int, toWidth: Int, toHeight: Int, fill: UInt8) -> [UInt8] {
        ByteGrid.padded(labels, width: width, height: height, channels: 1, toWidth: toWidth, toHeight: toHeight, fill: fill)
    }

    static func cropped(_ labels: [UInt8], width: Int, height: Int, x: Int, y: Int, toWidth: Int, toHeight: Int) -> [UInt8] {
        ByteGrid.cropped(labels, width: width, height: height, channels: 1, x: x, y: y, toWidth: toWidth, toHeight: toHeight)
    }
}

// MARK: - Image operations

extension RGBImage {
    /// Left–right flip.
    public func mirrored() -> RGBImage {
        RGBImage(width: width, height: height,
                 pixels: ByteGrid.mirrored(pixels, width: width, height: height, channels: 3))
    }

    /// Right/bottom padding with black (0, 0, 0).
    public func padded(width newWidth: Int, height newHeight: Int) -> RGBImage {
        RGBImage(width: newWidth, height: newHeight,
                 pixels: ByteGrid.padded(pixels, width: width, height: height, channels: 3,
                                         toWidth: newWidth, toHeight: newHeight, fill: 0))
    }

    /// The `width` × `height` window whose top-left pixel is (`x`, `y`).
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        RGBImage(width: cropWidth, height: cropHeight,
                 pixels: ByteGrid.cropped(pixels, width: width, height: height, channels: 3,
                                          x: x, y: y, toWidth: cropWidth, toHeight: cropHeight))
    }

    /// Pillow `Image.resize((width, height), BILINEAR)`: half-pixel centers,
    /// triangle filter of support max(1, in/out) input pixels each side,
    /// horizontal pass then vertical pass, 22-bit fixed-point weights.
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth)×\(newHeight)")
        var current = self
        if newWidth != width {
            let taps = BilinearTaps(inputSize: width, outputSize: newWidth)
            current = RGBImage(width: newWidth, height: height, pixels: taps.apply(
                pixels, lines: height, inputStride: 3, outputStride: 3,
                inputLineStride: width * 3, outputLineStride: newWidth * 3, channels: 3))
        }
        if newHeight != height {
            let taps = BilinearTaps(inputSize: height, outputSize: newHeight)
            // Columns are the "lines": a tap steps one row (width·3 bytes).
            current = RGBImage(width: newWidth, height: newHeight, pixels: taps.apply(
                current.pixels, lines: newWidth, inputStride: newWidth * 3, outputStride: newWidth * 3,
                inputLineStride: 3, outputLineStride: 3, channels: 3))
        }
        return current
    }

    /// Gaussian blur with sigma = `radius` (Pillow's `GaussianBlur(radius)`):
    /// separable kernel over ±⌈3σ⌉ pixels, edges clamped, rounded to nearest.
    /// Radius 0 returns the image unchanged.
    public func gaussianBlurred(radius: Double) -> RGBImage {
        precondition(radius >= 0, "blur radius must be non-negative, got \(radius)")
        guard radius > 0 else { return self }
        let reach = Int((3 * radius).rounded(.up))
        var kernel = (-reach...reach).map { Float(exp(-Double($0 * $0) / (2 * radius * radius))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }

        let rowStride = width * 3
        var horizontal = [Float](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var sum: Float = 0
                    for k in -reach...reach {
                        let sx = Swift.min(Swift.max(x + k, 0), width - 1)
                        sum += kernel[k + reach] * Float(pixels[y * rowStride + sx * 3 + c])
                    }
                    horizontal[y * rowStride + x * 3 + c] = sum
                }
            }
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var sum: Float = 0
                    for k in -reach...reach {
                        let sy = Swift.min(Swift.max(y + k, 0), height - 1)
                        sum += kernel[k + reach] * horizontal[sy * rowStride + x * 3 + c]
                    }
                    out[y * rowStride + x * 3 + c] = UInt8(Swift.min(Swift.max(sum.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}

/// Pillow's resampling coefficients for one axis (`precompute_coeffs` with the
/// bilinear filter): output `i` reads inputs `start[i] ..< start[i] + count[i]`
/// with fixed-point weights summing to 2²².
private struct BilinearTaps {
    static let precisionBits = 22

    var start: [Int] = []
    var count: [Int] = []
    /// `maxTaps` weights per output, row-major.
    var weights: [Int32] = []
    var maxTaps = 0

    init(inputSize: Int, outputSize: Int) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = Swift.max(scale, 1)
        let support = 1.0 * filterScale  // the triangle filter reaches 1 input pixel at scale 1
        maxTaps = Int(support.rounded(.up)) * 2 + 1
        weights = [Int32](repeating: 0, count: outputSize * maxTaps)
        var real = [Double](repeating: 0, count: maxTaps)
        for i in 0..<outputSize {
            let center = (Double(i) + 0.5) * scale
            // C's (int) truncates toward zero; the clamp makes that floor-equivalent here.
            let lo = Swift.max(Int(center - support + 0.5), 0)
            let hi = Swift.min(Int(center + support + 0.5), inputSize)
            let n = hi - lo
            var total = 0.0
            for k in 0..<n {
                let t = abs((Double(k + lo) - center + 0.5) / filterScale)
                real[k] = t < 1 ? 1 - t : 0
                total += real[k]
            }
            for k in 0..<n {
                let w = total != 0 ? real[k] / total : 0
                weights[i * maxTaps + k] = Int32((w * Double(1 << Self.precisionBits)).rounded(.toNearestOrAwayFromZero))
            }
            start.append(lo)
            count.append(n)
        }
    }

    /// Resamples `lines` independent 1-D signals of `channels` interleaved bytes.
    func apply(_ input: [UInt8], lines: Int, inputStride: Int, outputStride: Int,
               inputLineStride: Int, outputLineStride: Int, channels: Int) -> [UInt8] {
        let outputSize = start.count
        var output = [UInt8](repeating: 0, count: lines * outputSize * channels)
        let half = 1 << (Self.precisionBits - 1)
        input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                for line in 0..<lines {
                    let inBase = line * inputLineStride, outBase = line * outputLineStride
                    for i in 0..<outputSize {
                        let first = start[i], n = count[i], wBase = i * maxTaps
                        for c in 0..<channels {
                            var acc = half
                            for k in 0..<n {
                                acc += Int(src[inBase + (first + k) * inputStride + c]) * Int(weights[wBase + k])
                            }
                            dst[outBase + i * outputStride + c] = UInt8(clamping: acc >> Self.precisionBits)
                        }
                    }
                }
            }
        }
        return output
    }
}
