import Foundation
@testable import Segmentation
import Testing

/// `segment demo`'s output directory handling (the training itself is the
/// README's main job, measured in Docs/training.md, not a unit test).
@Suite("Demo output")
struct DemoTests {
    @Test func aRerunReplacesItsOwnFilesAndAForeignDirectoryIsRefused() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        var demo = Demo(output: fixture.url("demo"))
        demo.shapes = SyntheticShapes(classCount: 3, sizes: 40...48)
        try demo.prepareOutput()
        try demo.shapes.write(to: demo.dataDirectory, trainCount: 5, validationCount: 2)
        try fixture.write(Data("old".utf8), to: "demo/predictions/stale.png")
        // A rerun with fewer images leaves none of the first run's files behind.
        try demo.prepareOutput()
        try demo.shapes.write(to: demo.dataDirectory, trainCount: 3, validationCount: 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: demo.dataDirectory.appendingPathComponent("train").path).count == 3)
        #expect(!FileManager.default.fileExists(atPath: fixture.url("demo/predictions/stale.png").path))

        try fixture.write(Data("mine".utf8), to: "elsewhere/notes.txt")
        let foreign = Demo(output: fixture.url("elsewhere"))
        #expect(throws: DemoError.foreignOutput(fixture.url("elsewhere").path)) { try foreign.prepareOutput() }
        #expect(FileManager.default.fileExists(atPath: fixture.url("elsewhere/notes.txt").path))
    }

    /// The same seed writes the same bytes; another seed writes other images.
    @Test func syntheticShapesAreReproducibleAndUseEveryClass() throws {
        let shapes = SyntheticShapes(classCount: 4, sizes: 60...70, seed: 11)
        let first = (0..<8).map { shapes.sample($0, split: .train) }
        let again = (0..<8).map { shapes.sample($0, split: .train) }
        #expect(first.map(\.image) == again.map(\.image) && first.map(\.mask) == again.map(\.mask))
        #expect(SyntheticShapes(classCount: 4, sizes: 60...70, seed: 12).sample(0, split: .train).image != first[0].image)
        #expect(Set(first.flatMap(\.mask.values)) == [0, 1, 2, 3])
        #expect(first.allSatisfy { (60...70).contains($0.image.width) && $0.image.width == $0.mask.width && $0.image.height == $0.mask.height })
    }
}
