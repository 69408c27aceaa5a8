import Foundation
@testable import Segmentation
import Testing

@Suite struct ManifestTests {
    @Test func relativeAbsoluteAndS3PathsWithAttributeNames() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("images/a.png")
        try fixture.writeAnnotation("masks/a.png")
        try fixture.writeImage("s3/bucket/img/b.png")
        try fixture.writeAnnotation("s3/bucket/ann/b.png")
        let absoluteImage = fixture.url("images/a.png").path
        try fixture.write("""
            {"source-ref": "\(absoluteImage)", "my-labels-ref": "masks/a.png", "other-ref": "x", "note": 3}

            {"source-ref": "s3://bucket/img/b.png", "my-labels-ref": "s3://bucket/ann/b.png", "other-ref": "y"}
            """, to: "sub/../train.manifest")
        let manifest = fixture.url("train.manifest")
        let dataset = try ChannelDataset(
            manifest: manifest, attributeNames: ["source-ref", "my-labels-ref"], s3Root: fixture.url("s3"),
            labelMap: .scale(2))
        #expect(dataset.name == "train.manifest" && dataset.labelMap == .scale(2))
        #expect(dataset.samples.map(\.name) == ["a", "b"])
        #expect(dataset.samples.map(\.image.path) == [absoluteImage, fixture.url("s3/bucket/img/b.png").path])
        #expect(dataset.samples.map(\.annotation.path)
            == [fixture.url("masks/a.png").path, fixture.url("s3/bucket/ann/b.png").path])
        #expect(try dataset.loadSample(1, classCount: 1).labels.count == 12)

        // Without --attribute-names there are two candidates: an error naming line 1.
        #expect(throws: DatasetError.malformedManifestLine(
            file: manifest.path, line: 1,
            reason: "several annotation attributes [\"my-labels-ref\", \"other-ref\"]; "
                + "choose one with --attribute-names source-ref,NAME-ref")) {
            try AugmentedManifest.read(manifest, s3Root: fixture.url("s3"))
        }
        // Without --s3-root, line 3 cannot be read.
        #expect(throws: DatasetError.s3PathWithoutRoot(
            file: manifest.path, line: 3, path: "s3://bucket/img/b.png")) {
            try AugmentedManifest.read(manifest, attributeNames: ["source-ref", "my-labels-ref"])
        }
    }

    @Test func singleOtherRefKeyIsTheAnnotation() throws {
        let manifest = URL(fileURLWithPath: "/data/m.manifest")
        let samples = try AugmentedManifest.parse(
            #"{"source-ref": "x.jpg", "job-ref": "/masks/x.png", "job-ref-metadata": {"a": 1}}"#, manifest: manifest)
        #expect(samples == [SegmentationSample(
            image: URL(fileURLWithPath: "/data/x.jpg"), annotation: URL(fileURLWithPath: "/masks/x.png"), name: "x")])
    }

    @Test func missingSourceRefAndBadLinesNameTheLine() {
        let manifest = URL(fileURLWithPath: "/data/m.manifest")
        #expect(throws: DatasetError.malformedManifestLine(file: "/data/m.manifest", line: 2, reason: "no \"source-ref\" key")) {
            try AugmentedManifest.parse("""
                {"source-ref": "a.png", "l-ref": "a.png"}
                {"image": "b.png", "l-ref": "b.png"}
                """, manifest: manifest)
        }
        #expect(throws: DatasetError.malformedManifestLine(file: "/data/m.manifest", line: 1, reason: "not a JSON object")) {
            try AugmentedManifest.parse("{\"source-ref\": ", manifest: manifest)
        }
        #expect(throws: DatasetError.malformedManifestLine(
            file: "/data/m.manifest", line: 1,
            reason: "no annotation attribute (a key ending in -ref besides source-ref)")) {
            try AugmentedManifest.parse(#"{"source-ref": "a.png"}"#, manifest: manifest)
        }
    }

    @Test func missingFileNamesManifestAndLine() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.writeImage("a.png")
        try fixture.write("""
            {"source-ref": "a.png", "l-ref": "a.png"}
            {"source-ref": "a.png", "l-ref": "gone.png"}
            """, to: "m.manifest")
        let manifest = fixture.url("m.manifest")
        #expect(throws: DatasetError.missingFile(path: fixture.url("gone.png").path, manifest: manifest.path, line: 2)) {
            try ChannelDataset(manifest: manifest)
        }
    }
}
