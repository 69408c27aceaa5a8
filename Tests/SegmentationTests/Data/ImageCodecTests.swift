import Foundation
@testable import Segmentation
import Testing

/// The image samples of Fixtures/images/ and their expected decodes, written by
/// Fixtures/generate_image_samples.py (PNGs byte by byte, JPEGs by Pillow).
enum ImageSamples {
    struct Sample: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let width: Int
        let height: Int
        /// Base64 RGB bytes, or nil when decoding as an image must fail with `imageError`.
        let image: String?
        /// Largest allowed difference per byte: 0 for PNG (exact), small for
        /// JPEG (Pillow's libjpeg-turbo against the system's; CMYK rounding).
        let imageTolerance: Int
        let imageError: String?
        /// Base64 raw values, or nil when decoding as an annotation must fail with `annotationError`.
        let annotation: String?
        let annotationError: String?

        var testDescription: String { name }
        var data: Data { ImageSamples.data(name) }
    }

    static let directory = KernelFixtures.directory.appendingPathComponent("images")

    static let all: [Sample] = {
        struct Manifest: Decodable { let samples: [Sample] }
        let url = directory.appendingPathComponent("expected.json")
        do {
            return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url)).samples
        } catch {
            fatalError("cannot load \(url.path): \(error) — regenerate it with generate_image_samples.py")
        }
    }()

    static func data(_ name: String) -> Data {
        let url = directory.appendingPathComponent(name)
        guard let data = try? Data(contentsOf: url) else { fatalError("missing image sample \(url.path)") }
        return data
    }

    static func bytes(_ base64: String) -> [UInt8] { Array(Data(base64Encoded: base64)!) }
}

@Suite("Image codec")
struct ImageCodecTests {
    // MARK: Decoding the samples

    @Test(arguments: ImageSamples.all)
    func decodesImages(_ sample: ImageSamples.Sample) throws {
        guard let expected = sample.image.map(ImageSamples.bytes) else {
            let error = #expect(throws: ImageError.self) { try ImageCodec.decodeImage(sample.data, file: sample.name) }
            #expect(sample.imageError == "corrupt")
            if case .corrupt(sample.name, .png, _)? = error {} else {
                Issue.record("\(sample.name): expected a corrupt-PNG error, got \(String(describing: error))")
            }
            return
        }
        let image = try ImageCodec.decodeImage(sample.data, file: sample.name)
        #expect(image.width == sample.width && image.height == sample.height)
        #expect(image.pixels.count == expected.count)
        let difference = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(difference <= sample.imageTolerance, "\(sample.name): largest difference \(difference)")
    }

    @Test(arguments: ImageSamples.all)
    func decodesAnnotations(_ sample: ImageSamples.Sample) throws {
        if let expected = sample.annotation.map(ImageSamples.bytes) {
            let mask = try ImageCodec.decodeAnnotation(sample.data, file: sample.name)
            #expect(mask.width == sample.width && mask.height == sample.height)
            #expect(mask.values == expected)
            return
        }
        let error = #expect(throws: ImageError.self) { try ImageCodec.decodeAnnotation(sample.data, file: sample.name) }
        switch (sample.annotationError, error) {
        case let ("notSingleChannel:RGB"?, .annotationNotSingleChannel(file, layout)?),
             let ("notSingleChannel:RGBA"?, .annotationNotSingleChannel(file, layout)?),
             let ("notSingleChannel:grayscale+alpha"?, .annotationNotSingleChannel(file, layout)?):
            #expect(file == sample.name && "notSingleChannel:" + layout == sample.annotationError)
        case let ("unsupported"?, .unsupportedContent(file, reason)?):
            #expect(file == sample.name && reason.contains("16-bit"))
        case let ("jpeg"?, .unsupportedContent(file, reason)?):
            #expect(file == sample.name && reason.contains("annotation is a JPEG"))
        default:
            Issue.record("\(sample.name): expected \(sample.annotationError ?? "success"), got \(String(describing: error))")
        }
    }

    @Test func paletteIndicesAreValuesForAnnotationsAndColoursForImages() throws {
        // The generator's IDS: columns 0–2 hold 0, 3–5 hold 1, 6–8 hold 15, then rows 0–1 hold 255.
        let data = ImageSamples.data("palette.png")
        let mask = try ImageCodec.decodeAnnotation(data, file: "palette.png")
        #expect([mask[x: 0, y: 0], mask[x: 3, y: 0], mask[x: 6, y: 0], mask[x: 9, y: 0]] == [0, 1, 15, 255])
        let image = try ImageCodec.decodeImage(data, file: "palette.png")
        // PASCAL VOC colours: background, aeroplane, person, and 255's (224, 224, 192).
        #expect(image[x: 0, y: 0] == SIMD3(0, 0, 0))
        #expect(image[x: 3, y: 0] == SIMD3(128, 0, 0))
        #expect(image[x: 6, y: 0] == SIMD3(192, 128, 128))
        #expect(image[x: 9, y: 0] == SIMD3(224, 224, 192))
    }

    @Test func sixteenBitKeepsTheHighByte() throws {
        // gray16.png's samples are g·256 + (200…255); rounding v·255/65535 would give g + 1 for most.
        let image = try ImageCodec.decodeImage(ImageSamples.data("gray16.png"), file: "gray16.png")
        let gray8 = try ImageCodec.decodeImage(ImageSamples.data("gray8.png"), file: "gray8.png")
        #expect(image == gray8)
    }

    // MARK: Round trips

    @Test(arguments: [(1, 1), (13, 7), (64, 3), (5, 40)])
    func masksRoundTripThroughPNG(width: Int, height: Int) throws {
        var generator = SplitMix64(seed: UInt64(width * 1000 + height))
        let values = (0..<(width * height)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let mask = ClassMask(width: width, height: height, values: values)
        let png = try ImageCodec.encodePNG(mask: mask)
        #expect(ImageCodec.format(of: png) == .png)
        #expect(try ImageCodec.decodeAnnotation(png, file: "mask.png") == mask)
        // As an image, a gray PNG is the value replicated.
        let image = try ImageCodec.decodeImage(png, file: "mask.png")
        #expect(image.pixels == values.flatMap { [$0, $0, $0] })
    }

    @Test(arguments: [(1, 1), (13, 7), (64, 3), (5, 40)])
    func rgbRoundTripsThroughPNG(width: Int, height: Int) throws {
        var generator = SplitMix64(seed: UInt64(width * 1000 + height) ^ 0xC0FFEE)
        let pixels = (0..<(width * height * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        let png = try ImageCodec.encodePNG(rgb: image)
        #expect(try ImageCodec.decodeImage(png, file: "overlay.png") == image)
        // An RGB PNG is not an annotation.
        #expect(throws: ImageError.annotationNotSingleChannel(file: "overlay.png", layout: "RGB")) {
            try ImageCodec.decodeAnnotation(png, file: "overlay.png")
        }
    }

    // MARK: Format, limits and messages

    @Test func formatComesFromTheSignatureNotTheExtension() throws {
        let png = try ImageCodec.decodeImage(ImageSamples.data("rgb.png"), file: "train/0001.jpg")
        #expect(png.width == 13)
        let jpeg = try ImageCodec.decodeImage(ImageSamples.data("rgb_baseline.jpg"), file: "train/0001.png")
        #expect(jpeg.width == 29)
        let url = ImageSamples.directory.appendingPathComponent("palette.png")
        #expect(try ImageCodec.decodeAnnotation(contentsOf: url).width == 13)
        #expect(try ImageCodec.decodeImage(contentsOf: url).height == 7)
    }

    @Test func otherFormatsAreNamedInTheError() {
        let cases: [(bytes: [UInt8], message: String)] = [
            ([], "x.jpg: the file is empty; supported image formats are JPEG and PNG"),
            (Array("GIF89a\u{1}\u{0}".utf8), "x.jpg: is a GIF file; supported image formats are JPEG and PNG"),
            (Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), "x.jpg: is a WebP file; supported"),
            ([0x42, 0x4D, 1, 2], "x.jpg: is a BMP file"),
            (Array("hello world".utf8), "x.jpg: is neither JPEG nor PNG (it starts with 68 65 6C 6C 6F 20 77 6F); supported"),
        ]
        for (bytes, message) in cases {
            let error = #expect(throws: ImageError.self) { try ImageCodec.decodeImage(Data(bytes), file: "x.jpg") }
            #expect(error?.description.hasPrefix(message) == true, "\(String(describing: error))")
        }
    }

    @Test func pixelLimitIsInclusive() throws {
        for (name, pixels) in [("rgb.png", 13 * 7), ("palette.png", 13 * 7), ("rgb_progressive.jpg", 29 * 19)] {
            let data = ImageSamples.data(name)
            _ = try ImageCodec.decodeImage(data, file: name, maximumPixels: pixels)
            let (width, height) = name.hasSuffix(".jpg") ? (29, 19) : (13, 7)
            #expect(throws: ImageError.tooLarge(file: name, width: width, height: height, maximumPixels: pixels - 1)) {
                try ImageCodec.decodeImage(data, file: name, maximumPixels: pixels - 1)
            }
        }
        #expect(throws: ImageError.tooLarge(file: "palette.png", width: 13, height: 7, maximumPixels: 90)) {
            try ImageCodec.decodeAnnotation(ImageSamples.data("palette.png"), file: "palette.png", maximumPixels: 90)
        }
    }

    @Test func messagesNameTheFileAndTheReason() throws {
        let huge = Corruption.withPNGSize(ImageSamples.data("rgb.png"), width: 50000, height: 50000)
        let tooLarge = #expect(throws: ImageError.self) { try ImageCodec.decodeImage(huge, file: "train/big.png") }
        #expect(tooLarge?.description == "train/big.png: declared size 50000×50000 exceeds the 100-megapixel limit")

        let rgb = #expect(throws: ImageError.self) {
            try ImageCodec.decodeAnnotation(ImageSamples.data("rgb.png"), file: "train_annotation/0001.png")
        }
        #expect(rgb?.description.hasPrefix(
            "train_annotation/0001.png: annotation is an RGB PNG; annotations must be single-channel 8-bit PNGs (grayscale or palette)") == true)

        let jpeg = ImageSamples.data("rgb_baseline.jpg")
        let truncated = #expect(throws: ImageError.self) {
            try ImageCodec.decodeImage(jpeg.prefix(jpeg.count - 200), file: "train/0001.jpg")
        }
        #expect(truncated?.description == "train/0001.jpg: corrupt JPEG data: premature end of JPEG file")

        var png = ImageSamples.data("rgb.png")
        png[30] ^= 0x10  // IHDR's CRC
        let crc = #expect(throws: ImageError.self) { try ImageCodec.decodeImage(png, file: "train/0002.png") }
        #expect(crc?.description == "train/0002.png: corrupt PNG data: IHDR: CRC error")
    }

    // MARK: Damaged files

    /// Every damaged file throws an ImageError — no crash, no hang, no silent
    /// repair — except a JPEG byte flip that lands where libjpeg cannot see it
    /// (entropy-coded data, table values, APP segments); those decode and are
    /// counted. Declared sizes above the limit are refused as `.tooLarge`,
    /// which the codec decides before allocating pixels.
    @Test func damagedFilesAreErrors() throws {
        let damaged = Corruption.damagedFiles()
        #expect(damaged.count >= 200)
        var decodedJPEGFlips = 0, jpegFlips = 0
        for file in damaged {
            for asAnnotation in file.isPNG ? [false, true] : [false] {
                let start = ContinuousClock.now
                do {
                    if asAnnotation {
                        _ = try ImageCodec.decodeAnnotation(file.data, file: file.label)
                    } else {
                        _ = try ImageCodec.decodeImage(file.data, file: file.label)
                    }
                    if file.kind == .flip && !file.isPNG {
                        decodedJPEGFlips += 1
                    } else {
                        Issue.record("\(file.label)\(asAnnotation ? " (annotation)" : ""): decoded despite the damage")
                    }
                } catch let error as ImageError {
                    if file.kind == .hugeHeader {
                        guard case .tooLarge = error else {
                            Issue.record("\(file.label): expected tooLarge, got \(error)")
                            continue
                        }
                    }
                    #expect(error.description.hasPrefix(file.label + ":"), "\(error)")
                } catch {
                    Issue.record("\(file.label): not an ImageError: \(error)")
                }
                if file.kind == .flip && !file.isPNG && !asAnnotation { jpegFlips += 1 }
                // A sanity bound, not a benchmark: each sample decodes in well under a millisecond.
                #expect(ContinuousClock.now - start < .seconds(2), "\(file.label) took \(ContinuousClock.now - start)")
            }
        }
        // Measured with this seed: 17 of the 40 JPEG flips decode; no PNG flip does (every chunk has a CRC).
        #expect(decodedJPEGFlips < jpegFlips, "\(decodedJPEGFlips) of \(jpegFlips) JPEG flips decoded")
    }
}

/// Damaged variants of the samples, derived with a fixed seed.
enum Corruption {
    enum Kind { case truncated, flip, empty, signature, badHeader, hugeHeader }

    struct DamagedFile {
        let label: String
        let kind: Kind
        let data: Data
        var isPNG: Bool { ImageCodec.format(of: data) == .png || label.contains(".png") }
    }

    static func damagedFiles() -> [DamagedFile] {
        var files: [DamagedFile] = []
        var generator = SplitMix64(seed: 20_240_601)
        for sample in ImageSamples.all {
            let data = sample.data
            for _ in 0..<8 {
                let length = Int.random(in: 0..<data.count, using: &generator)
                files.append(DamagedFile(label: "\(sample.name) cut at \(length)", kind: .truncated,
                                         data: data.prefix(length)))
            }
            for _ in 0..<8 {
                var flipped = data
                let index = Int.random(in: 0..<data.count, using: &generator)
                let mask = UInt8.random(in: 1...255, using: &generator)
                flipped[index] ^= mask
                files.append(DamagedFile(label: "\(sample.name) byte \(index) ^ \(mask)", kind: .flip, data: flipped))
            }
        }
        let png = ImageSamples.data("rgb.png"), palette = ImageSamples.data("palette.png")
        let jpeg = ImageSamples.data("rgb_baseline.jpg"), progressive = ImageSamples.data("rgb_progressive.jpg")
        files += [
            DamagedFile(label: "empty.png", kind: .empty, data: Data()),
            DamagedFile(label: "png-signature-only.png", kind: .truncated, data: png.prefix(8)),
            DamagedFile(label: "jpeg-signature-only.jpg", kind: .truncated, data: jpeg.prefix(3)),
            DamagedFile(label: "bad-png-signature.png", kind: .signature, data: Data([0x88]) + png.dropFirst()),
            DamagedFile(label: "bad-jpeg-signature.jpg", kind: .signature, data: Data([0xFF, 0xD9]) + jpeg.dropFirst(2)),
            DamagedFile(label: "jpeg-body-in-png.png", kind: .signature, data: png.prefix(8) + jpeg.dropFirst(2)),
            DamagedFile(label: "png-body-in-jpeg.jpg", kind: .signature, data: jpeg.prefix(3) + png.dropFirst(8)),
            DamagedFile(label: "huge.png", kind: .hugeHeader, data: withPNGSize(png, width: 60000, height: 60000)),
            DamagedFile(label: "huge-palette.png", kind: .hugeHeader, data: withPNGSize(palette, width: 60000, height: 60000)),
            DamagedFile(label: "widest.png", kind: .hugeHeader, data: withPNGSize(png, width: 0x7FFF_FFFF, height: 1)),
            // 20 M × 1 is under the pixel limit, but its rows would be absurd.
            DamagedFile(label: "long-row.png", kind: .hugeHeader, data: withPNGSize(palette, width: 20_000_000, height: 1)),
            DamagedFile(label: "huge.jpg", kind: .hugeHeader, data: withJPEGSize(jpeg, width: 65000, height: 65000)),
            // 65500 is libjpeg's own maximum; beyond it libjpeg refuses the file itself.
            DamagedFile(label: "huge-progressive.jpg", kind: .hugeHeader,
                        data: withJPEGSize(progressive, width: 65500, height: 65500)),
            DamagedFile(label: "beyond-libjpeg.jpg", kind: .badHeader, data: withJPEGSize(jpeg, width: 65535, height: 65535)),
            DamagedFile(label: "zero-width.png", kind: .badHeader, data: withPNGSize(png, width: 0, height: 7)),
            DamagedFile(label: "zero-height.jpg", kind: .badHeader, data: withJPEGSize(jpeg, width: 29, height: 0)),
        ]
        return files
    }

    /// The PNG with its IHDR width and height replaced and the chunk's CRC recomputed.
    static func withPNGSize(_ png: Data, width: UInt32, height: UInt32) -> Data {
        var bytes = [UInt8](png)
        precondition(bytes[12..<16] == [0x49, 0x48, 0x44, 0x52], "IHDR is the first chunk")
        bytes.replaceSubrange(16..<20, with: bigEndian(width))
        bytes.replaceSubrange(20..<24, with: bigEndian(height))
        bytes.replaceSubrange(29..<33, with: bigEndian(crc32(bytes[12..<29])))
        return Data(bytes)
    }

    /// The JPEG with its SOF width and height replaced (the first SOFn segment).
    static func withJPEGSize(_ jpeg: Data, width: UInt16, height: UInt16) -> Data {
        var bytes = [UInt8](jpeg)
        var offset = 2
        while offset + 4 <= bytes.count, bytes[offset] == 0xFF {
            let marker = bytes[offset + 1]
            if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                bytes[offset + 5] = UInt8(height >> 8); bytes[offset + 6] = UInt8(height & 0xFF)
                bytes[offset + 7] = UInt8(width >> 8); bytes[offset + 8] = UInt8(width & 0xFF)
                return Data(bytes)
            }
            offset += 2 + Int(bytes[offset + 2]) << 8 + Int(bytes[offset + 3])
        }
        preconditionFailure("no SOF marker found")
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }

    /// CRC-32 (ISO 3309, as PNG chunks use), bit by bit.
    static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
