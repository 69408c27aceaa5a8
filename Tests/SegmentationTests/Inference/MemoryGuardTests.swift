import Foundation
@testable import Segmentation
import Testing

/// `segment predict` refuses an image too large for memory with one line,
/// from its header, before decoding (issue 15, defect 3).
@Suite("predict memory guard", .serialized)
struct MemoryGuardTests {
    /// A real small PNG whose header is rewritten to declare `width`×`height`
    /// (the pixel data stays small: the guard must act on the header alone).
    static func pngDeclaring(width: Int, height: Int) throws -> Data {
        var data = try ImageCodec.encodePNG(rgb: PredictorTests.image(width: 8, height: 8, seed: 1))
        // Signature (8) + IHDR length (4) + "IHDR" (4), then width and height, big-endian.
        for (offset, value) in [(16, width), (20, height)] {
            for byte in 0..<4 { data[offset + byte] = UInt8(truncatingIfNeeded: value >> (24 - 8 * byte)) }
        }
        let crc = crc32(data[12..<29])  // over the chunk type and its 13 data bytes
        for byte in 0..<4 { data[29 + byte] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * byte)) }
        return data
    }

    static func crc32(_ bytes: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test func theLimitFollowsThisMachinesMemory() {
        let gib = 1 << 30
        // 24 GiB holds some tens of megapixels, never the 81 MP of the issue.
        #expect((30_000_000...50_000_000).contains(InferenceMemory.maximumPixels(memory: 24 * gib)))
        // A server's workers share the budget.
        #expect(InferenceMemory.maximumPixels(memory: 24 * gib, evaluations: 2) < InferenceMemory.maximumPixels(memory: 24 * gib) / 2)
        #expect(InferenceMemory.maximumPixels(memory: 2 * gib) < InferenceMemory.maximumPixels(memory: 24 * gib))
        #expect(InferenceMemory.bytesNeeded(pixels: 81_000_000) > 30_000_000_000)
        #expect(InferenceMemory.maximumPixels(memory: 1 << 20) >= 1)
    }

    @Test func aHugeDeclaredImageIsRefusedFromItsHeader() throws {
        let predictor = Predictor(model: PredictorTests.model, maximumPixels: 4_000_000)
        let data = try Self.pngDeclaring(width: 9000, height: 9000)
        #expect(throws: PredictionError.self) { try predictor.decodeImage(data, file: "big.png") }
        do {
            _ = try predictor.decodeImage(data, file: "big.png")
        } catch {
            let text = "\(error)"
            #expect(text.contains("big.png") && text.contains("9000×9000") && text.contains("81.0 MP")
                    && text.contains("4.0 MP") && !text.contains("\n"), "\(text)")
        }
    }

    @Test func predictRefusesWhatDoesNotFitAndWritesTheRest() throws {
        try #require(FileManager.default.isExecutableFile(atPath: SageMakerModeTests.segmentBinary.path))
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try ModelDirectory.write(PredictorTests.model, to: fixture.url("model"), hyperparameters: [:], origin: "test")
        try fixture.write(Self.pngDeclaring(width: 9000, height: 9000), to: "in/huge.png")
        try fixture.write(ImageCodec.encodePNG(rgb: PredictorTests.image(width: 20, height: 20, seed: 2)), to: "in/small.png")
        let run = { (arguments: [String]) in
            try SageMakerModeTests().run(["predict", "--model", fixture.url("model").path, "--output", fixture.url("out").path] + arguments)
        }
        // The default limit comes from this machine's memory: 81 MP is refused, 400 px is written.
        let defaults = try run([fixture.url("in").path])
        #expect(defaults.status == 1, "\(defaults.stderr)")
        #expect(defaults.stderr.contains("huge.png: 9000×9000 (81.0 MP)") && defaults.stderr.contains("of memory"), "\(defaults.stderr)")
        #expect(FileManager.default.fileExists(atPath: fixture.url("out/small.png").path))
        // --max-pixels lowers it.
        let lowered = try run(["--max-pixels", "100", fixture.url("in/small.png").path])
        #expect(lowered.status == 1 && lowered.stderr.contains("small.png: 20×20") && lowered.stderr.contains("--max-pixels"),
                "\(lowered.stderr)")
        let zero = try run(["--max-pixels", "0", fixture.url("in/small.png").path])
        #expect(zero.status != 0 && zero.stderr.contains("--max-pixels must be positive"))
    }

    /// The guard is for whole-image inference: scoring center crops of a
    /// larger image runs the network at the crop's size and is not refused.
    @Test func centerCropScoringIsNotLimitedByTheMemoryGuard() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        for name in ["a", "b"] {
            try fixture.writeImage("validation/\(name).png", width: 20, height: 16)
            try fixture.writeAnnotation("validation_annotation/\(name).png", width: 20, height: 16,
                                        values: (0..<320).map { UInt8($0 % 3) })
        }
        let dataset = try ChannelDataset(dataDirectory: fixture.root, split: .validation)
        let predictor = Predictor(model: PredictorTests.model, maximumPixels: 100)
        let matrix = try predictor.evaluate(dataset, batchSize: 2, cropSize: 16)
        #expect(matrix.labeledPixels == 2 * 16 * 16)
        #expect(throws: ImageError.self) { try predictor.evaluate(dataset, batchSize: 1) }
    }
}
