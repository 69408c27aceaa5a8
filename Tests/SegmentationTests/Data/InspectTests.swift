import Foundation
@testable import Segmentation
import Testing

@Suite struct InspectTests {
    @Test func reportCountsSizesHistogramAndBadFiles() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("train/a.png", width: 4, height: 3)
        try fixture.writeAnnotation("train_annotation/a.png", width: 4, height: 3,
                                    values: [0, 0, 0, 0, 3, 3, 3, 3, 6, 6, 255, 255])
        try fixture.writeImage("train/b.png", width: 6, height: 2)
        try fixture.writeAnnotation("train_annotation/b.png", width: 6, height: 2,
                                    values: [UInt8](repeating: 9, count: 12))
        try fixture.write(#"{"scale": 3}"#, to: "label_map/train_label_map.json")
        try fixture.writeImage("validation/good.png", width: 2, height: 2)
        try fixture.writeAnnotation("validation_annotation/good.png", width: 2, height: 2, values: [1, 1, 1, 1])
        var broken = try ImageCodec.encodePNG(rgb: RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 7, count: 12)))
        broken[broken.count - 20] ^= 0xFF  // flip a byte in the data chunk: a CRC error
        try fixture.write(broken, to: "validation/broken.png")
        try fixture.writeAnnotation("validation_annotation/broken.png", width: 2, height: 2)
        try fixture.writeImage("validation/lonely.png")

        let report = DatasetInspection(source: .dataDirectory(fixture.root), classCount: 3).run()
        #expect(report.channels.map(\.name) == ["train", "validation"])
        let train = report.channels[0]
        #expect(train.labelMap == .scale(3) && train.pairCount == 2)
        #expect(train.minimumWidth == 4 && train.maximumWidth == 6 && train.minimumHeight == 2 && train.maximumHeight == 3)
        #expect(train.classHistogram[0] == 4 && train.classHistogram[1] == 4 && train.classHistogram[2] == 2)
        #expect(train.classHistogram[3] == 12 && train.classHistogram[255] == 2)
        #expect(train.badFiles == [.init(
            file: fixture.url("train_annotation/b.png").path,
            problem: DatasetError.labelOutOfRange(
                file: fixture.url("train_annotation/b.png").path, value: 3, pixelCount: 12, classCount: 3).description)])
        let validation = report.channels[1]
        #expect(validation.pairCount == 2 && validation.imagesWithoutAnnotation == ["lonely"])
        #expect(validation.badFiles.map(\.file) == [fixture.url("validation/broken.png").path])
        #expect(validation.badFiles.first?.problem.contains("broken.png: corrupt PNG data") == true)
        #expect(validation.classHistogram[1] == 4 && validation.classHistogram[0] == 4)
        #expect(report.problemCount == 3 && report.hasProblems)

        let text = report.description
        #expect(text.contains("channel train (label map: scale 3)"), "\(text)")
        #expect(text.contains("image width 4–6, height 2–3"), "\(text)")
        #expect(text.contains("ignore (255): 2 (8.3%)"), "\(text)")
        #expect(text.contains("images without annotation (1): lonely"), "\(text)")
        #expect(text.contains("broken.png"), "\(text)")
        #expect(text.hasSuffix("3 problems found"), "\(text)")
    }

    @Test func cleanDatasetWithoutClassCountHasNoProblems() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        for split in ["train", "validation"] {
            try fixture.writeImage("\(split)/x.png")
            try fixture.writeAnnotation("\(split)_annotation/x.png", values: [UInt8](repeating: 200, count: 12))
        }
        let report = DatasetInspection(source: .dataDirectory(fixture.root)).run()
        #expect(!report.hasProblems, "\(report)")
        #expect(report.channels.allSatisfy { $0.classHistogram[200] == 12 })
        #expect(report.description.hasSuffix("OK: 2 channels, 2 pairs, no problems"))
    }

    @Test func missingChannelAndManifestSource() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("train/x.png")
        try fixture.writeAnnotation("train_annotation/x.png")
        let report = DatasetInspection(source: .dataDirectory(fixture.root)).run()
        #expect(report.problemCount == 1)
        #expect(report.channels[1].problems.first?.contains("missing channel directory") == true)

        try fixture.write("""
            {"source-ref": "train/x.png", "a-ref": "train_annotation/x.png"}
            {"source-ref": "train/x.png", "a-ref": "train_annotation/missing.png"}
            """, to: "m.manifest")
        let manifestReport = DatasetInspection(
            source: .manifest(fixture.url("m.manifest"), attributeNames: nil, s3Root: nil, labelMap: .identity)).run()
        #expect(manifestReport.channels.count == 1 && manifestReport.channels[0].pairCount == 2)
        #expect(manifestReport.channels[0].badFiles.map(\.file) == [fixture.url("train_annotation/missing.png").path])
    }
}
