import Foundation
@testable import Segmentation
import Testing

/// `segment predict` and `segment evaluate` as a user runs them.
@Suite("predict and evaluate commands", .serialized)
struct InferenceCommandTests {
    func segment(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try #require(FileManager.default.isExecutableFile(atPath: SageMakerModeTests.segmentBinary.path),
                     "segment was not built; run the tests with swift test -c release")
        return try SageMakerModeTests().run(arguments)
    }

    @Test func predictWritesMasksAndRecordsThatAgreeAndReportsABadImage() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let model = fixture.url("model.tar.gz")
        try ModelDirectory.write(PredictorTests.model, to: fixture.url("model"), hyperparameters: [:], origin: "test")
        try ModelDirectory.archive(fixture.url("model"))
        try FileManager.default.moveItem(at: fixture.url("model/model.tar.gz"), to: model)
        let images = [("a", 41, 23), ("b", 17, 30)]
        for (name, width, height) in images {
            try fixture.write(ImageCodec.encodeJPEG(rgb: PredictorTests.image(width: width, height: height, seed: 8)), to: "in/\(name).jpg")
        }
        try fixture.write(Data("not a jpeg".utf8), to: "in/broken.jpg")

        let png = try segment(["predict", "--model", model.path, "--output", fixture.url("png").path, "--overlay", fixture.url("in").path,
                               fixture.url("missing.jpg").path])
        #expect(png.status != 0 && png.stderr.contains("broken.jpg") && png.stderr.contains("missing.jpg: no such file")
                && png.stderr.contains("2 of 4 inputs failed"), "\(png.stderr)")
        let rec = try segment(["predict", "--model", model.path, "--accept", "application/x-protobuf", "--output", fixture.url("rec").path,
                               fixture.url("in/a.jpg").path, fixture.url("in/b.jpg").path])
        #expect(rec.status == 0, "\(rec.stderr)")
        for (name, width, height) in images {
            let mask = try ImageCodec.decodeAnnotation(contentsOf: fixture.url("png/\(name).png"))
            #expect(mask.width == width && mask.height == height)
            let probabilities = try ProbabilityRecord.decode(Data(contentsOf: fixture.url("rec/\(name).rec")), file: name)
            #expect(probabilities.count == 1 && probabilities[0].shape == [1, 3, height, width])
            #expect(argmaxClasses(probabilities[0]) == mask.values)
            #expect(FileManager.default.fileExists(atPath: fixture.url("png/\(name)_overlay.png").path))
        }
        let unknown = try segment(["predict", "--model", model.path, "--accept", "text/csv", fixture.url("in/a.jpg").path])
        #expect(unknown.status != 0 && unknown.stderr.contains("--accept"))
    }

    @Test func evaluatePrintsTheMetricsAsJSON() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try SyntheticShapes(classCount: 3, sizes: 40...48, seed: 4).write(to: fixture.root, trainCount: 1, validationCount: 3)
        try ModelDirectory.write(PredictorTests.model, to: fixture.url("model"), hyperparameters: [:], origin: "test")
        let result = try segment(["evaluate", "--model", fixture.url("model").path, "--data", fixture.root.path, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["pixel_accuracy", "mIOU", "per_class_iou", "mIOU_present"])
        // The same numbers as the library computes.
        let dataset = try ChannelDataset(dataDirectory: fixture.root, split: .validation)
        let matrix = try Predictor(model: PredictorTests.model).evaluate(dataset)
        #expect(abs((object["mIOU"] as? Double ?? -1) - matrix.meanIoU) < 1e-12)
        #expect(abs((object["pixel_accuracy"] as? Double ?? -1) - matrix.pixelAccuracy) < 1e-12)
        #expect((object["per_class_iou"] as? [Double])?.count == 3)
        let text = try segment(["evaluate", "--model", fixture.url("model").path, "--data", fixture.root.path])
        #expect(text.status == 0 && text.stdout.contains("pixel accuracy:") && text.stdout.contains("mIOU:"))
    }
}
