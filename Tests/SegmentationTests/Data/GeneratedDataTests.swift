import Foundation
@testable import Segmentation
import Testing

@Suite("Generated data")
struct GeneratedDataTests {
    @Test func jpegEncodingRoundTripsCloselyAndTheBenchDatasetLoads() throws {
        let pixels: [UInt8] = (0..<(33 * 17 * 3)).map { (index: Int) -> UInt8 in UInt8((index * 7) % 256 / 2 + 60) }
        let image = RGBImage(width: 33, height: 17, pixels: pixels)
        let decoded = try ImageCodec.decodeImage(ImageCodec.encodeJPEG(rgb: image, quality: 95), file: "x.jpg")
        #expect(decoded.width == 33 && decoded.height == 17)
        var totalError = 0
        for (a, b) in zip(decoded.pixels, pixels) { totalError += abs(Int(a) - Int(b)) }
        let meanError = totalError / pixels.count
        #expect(meanError < 12, "JPEG round trip mean error \(meanError)")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("generated-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataset = try DataBenchmark.generateDataset(count: 2, in: directory)
        #expect(dataset.count == 2)
        let sample = try dataset.loadSample(1, classCount: 4)
        #expect(sample.width == 500 && sample.height == 375)
        #expect(Set(sample.labels).isSubset(of: [0, 1, 2, 3]) && Set(sample.labels).count > 1)
    }
}
