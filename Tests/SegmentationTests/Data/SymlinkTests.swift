import Foundation
@testable import Segmentation
import Testing

/// People link data sets into place; every folder that is listed must follow
/// symbolic links (issue 15, defect 1).
@Suite struct SymlinkTests {
    /// Real channel folders under `real/`, and `linked/` whose four channel
    /// folders and label_map/ are symbolic links to them.
    func linkedDataDirectory() throws -> (DatasetFixture, URL) {
        let fixture = try DatasetFixture()
        for split in ["train", "validation"] {
            for name in ["a", "b"] {
                try fixture.writeImage("real/\(split)/\(name).png")
                try fixture.writeAnnotation("real/\(split)_annotation/\(name).png", values: [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
            }
        }
        try fixture.write(#"{"scale": 1}"#, to: "real/label_map/train_label_map.json")
        let linked = fixture.url("linked")
        try FileManager.default.createDirectory(at: linked, withIntermediateDirectories: true)
        for folder in ["train", "train_annotation", "validation", "validation_annotation", "label_map"] {
            try FileManager.default.createSymbolicLink(at: linked.appendingPathComponent(folder),
                                                       withDestinationURL: fixture.url("real/\(folder)"))
        }
        return (fixture, linked)
    }

    @Test func channelFoldersThatAreLinksAreRead() throws {
        let (fixture, linked) = try linkedDataDirectory()
        defer { fixture.remove() }
        let train = try ChannelDataset(dataDirectory: linked, split: .train)
        #expect(train.samples.map(\.name) == ["a", "b"])
        #expect(train.labelMap == .scale(1))
        #expect(try ChannelDataset(dataDirectory: linked, split: .validation).count == 2)
        let report = DatasetInspection(source: .dataDirectory(linked), classCount: 4).run()
        #expect(!report.hasProblems && report.channels.map(\.pairCount) == [2, 2])
    }

    @Test func aLinkedDataDirectoryAndLinkedFilesAreRead() throws {
        let (fixture, _) = try linkedDataDirectory()
        defer { fixture.remove() }
        // The data directory itself a link, and one image a link to a file.
        let data = fixture.url("data")
        try FileManager.default.createSymbolicLink(at: data, withDestinationURL: fixture.url("real"))
        try FileManager.default.createSymbolicLink(at: fixture.url("real/train/c.png"), withDestinationURL: fixture.url("real/train/a.png"))
        try FileManager.default.createSymbolicLink(at: fixture.url("real/train_annotation/c.png"),
                                                   withDestinationURL: fixture.url("real/train_annotation/a.png"))
        #expect(try ChannelDataset(dataDirectory: data, split: .train).samples.map(\.name) == ["a", "b", "c"])
    }

    @Test func predictionInputsFollowLinks() throws {
        let (fixture, linked) = try linkedDataDirectory()
        defer { fixture.remove() }
        let images = try ImageFiles.expand([linked.appendingPathComponent("train").path])
        #expect(images.map(\.lastPathComponent) == ["a.png", "b.png"])
        #expect(throws: ImageFilesError.noImages(directory: fixture.url("real/label_map").path)) {
            try ImageFiles.expand([fixture.url("real/label_map").path])
        }
        #expect(throws: ImageFilesError.noSuchFile(fixture.url("nothing").path)) {
            try ImageFiles.expand([fixture.url("nothing").path])
        }
    }

    @Test func manifestRelativePathsThroughALinkedFolder() throws {
        let (fixture, linked) = try linkedDataDirectory()
        defer { fixture.remove() }
        let manifest = linked.appendingPathComponent("train.manifest")
        try Data(#"{"source-ref": "train/a.png", "annotation-ref": "train_annotation/a.png"}"#.utf8).write(to: manifest)
        let dataset = try ChannelDataset(manifest: manifest)
        #expect(dataset.count == 1)
        let sample = try dataset.loadSample(0, classCount: 4)
        #expect(sample.width == 4 && sample.height == 3)
    }
}
