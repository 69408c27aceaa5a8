import Foundation
@testable import Segmentation
import Testing

@Suite struct DatasetTests {
    @Test func pairsByBaseNameSortedIgnoringHiddenFiles() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("train/b.PNG")
        try fixture.writeImage("train/a.png")
        try fixture.write(Data([0xFF, 0xD8, 0xFF]), to: "train/c.JPEG")
        try fixture.writeImage("train/.hidden.png")
        try fixture.write("notes", to: "train/readme.txt")
        for name in ["a", "b", "c"] { try fixture.writeAnnotation("train_annotation/\(name).png") }
        let dataset = try ChannelDataset(dataDirectory: fixture.root, split: .train)
        #expect(dataset.samples.map(\.name) == ["a", "b", "c"])
        #expect(dataset.samples.map(\.image.lastPathComponent) == ["a.png", "b.PNG", "c.JPEG"])
        #expect(dataset.samples.map(\.annotation.lastPathComponent) == ["a.png", "b.png", "c.png"])
        #expect(dataset.labelMap == .identity)
    }

    @Test func unmatchedNamesListFirstFiveAndCount() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        for i in 0..<7 { try fixture.writeImage("validation/img\(i).png") }
        try fixture.writeAnnotation("validation_annotation/img0.png")
        try fixture.writeAnnotation("validation_annotation/orphan.png")
        let expected = DatasetError.unmatchedFiles(
            channel: "validation", imagesWithoutAnnotation: (1..<7).map { "img\($0)" },
            annotationsWithoutImage: ["orphan"])
        #expect(throws: expected) { try ChannelDataset(dataDirectory: fixture.root, split: .validation) }
        let text = expected.description
        #expect(text.contains("6 images without annotation: img1, img2, img3, img4, img5 and 1 more"), "\(text)")
        #expect(text.contains("1 annotation without image: orphan"), "\(text)")
    }

    @Test func missingDirectorySpellsOutLayout() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("train/a.png")
        do {
            _ = try ChannelDataset(dataDirectory: fixture.root, split: .train)
            Issue.record("no error")
        } catch let error as DatasetError {
            guard case .missingChannelDirectory(let directory, _) = error else { throw error }
            #expect(directory.hasSuffix("train_annotation"))
            #expect(error.description.contains("validation_annotation/"))
        }
    }

    @Test func emptyChannelAndDuplicateBaseNames() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try FileManager.default.createDirectory(at: fixture.url("train"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: fixture.url("train_annotation"), withIntermediateDirectories: true)
        #expect(throws: DatasetError.emptyChannel(directory: fixture.url("train").path)) {
            try ChannelDataset(dataDirectory: fixture.root, split: .train)
        }
        try fixture.writeImage("train/a.png")
        try fixture.write(Data([0xFF, 0xD8, 0xFF]), to: "train/a.jpg")
        #expect(throws: DatasetError.duplicateBaseName(directory: fixture.url("train").path, names: ["a.jpg", "a.png"])) {
            try ChannelDataset(dataDirectory: fixture.root, split: .train)
        }
    }

    @Test func loadSampleAppliesLabelMapAndChecksRange() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("train/a.png", width: 2, height: 2)
        try fixture.writeAnnotation("train_annotation/a.png", width: 2, height: 2, values: [0, 3, 6, 255])
        try fixture.writeImage("train/b.png", width: 2, height: 2)
        try fixture.writeAnnotation("train_annotation/b.png", width: 2, height: 2, values: [9, 9, 9, 0])
        try fixture.writeImage("train/c.png", width: 3, height: 2)
        try fixture.writeAnnotation("train_annotation/c.png", width: 2, height: 2)
        try fixture.write(#"{"scale": "3"}"#, to: "label_map/train_label_map.json")
        let dataset = try ChannelDataset(dataDirectory: fixture.root, split: .train)
        #expect(dataset.labelMap == .scale(3))
        let sample = try dataset.loadSample(0, classCount: 3)
        #expect(sample.labels == [0, 1, 2, 255] && sample.width == 2 && sample.height == 2)
        #expect(sample.image.pixels.count == 12)
        let annotationB = fixture.url("train_annotation/b.png").path
        #expect(throws: DatasetError.labelOutOfRange(file: annotationB, value: 3, pixelCount: 3, classCount: 3)) {
            try dataset.loadSample(1, classCount: 3)
        }
        #expect(throws: DatasetError.sizeMismatch(
            image: fixture.url("train/c.png").path, imageWidth: 3, imageHeight: 2,
            annotation: fixture.url("train_annotation/c.png").path, annotationWidth: 2, annotationHeight: 2)) {
            try dataset.loadSample(2, classCount: 3)
        }
    }

    @Test func malformedLabelMapFileNamesTheFile() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("validation/a.png")
        try fixture.writeAnnotation("validation_annotation/a.png")
        try fixture.write(#"{"scale": 0}"#, to: "label_map/validation_label_map.json")
        #expect(throws: DatasetError.malformedLabelMap(
            file: fixture.url("label_map/validation_label_map.json").path, reason: "scale must be ≥ 1, got 0")) {
            try ChannelDataset(dataDirectory: fixture.root, split: .validation)
        }
    }
}
