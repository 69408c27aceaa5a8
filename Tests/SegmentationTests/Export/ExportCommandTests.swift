import Foundation
@testable import Segmentation
import Testing

/// `segment export` as a user runs it: what it prints, and a one-line error
/// with no file left behind for each bad request.
@Suite("export command", .serialized)
struct ExportCommandTests {
    func segment(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try InferenceCommandTests().segment(arguments)
    }

    /// Fails unless `result` failed with exactly one stderr line containing `message`.
    func expectOneLineError(_ result: (status: Int32, stdout: String, stderr: String), _ message: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = result.stderr.split(separator: "\n")
        #expect(result.status != 0, sourceLocation: sourceLocation)
        #expect(lines.count == 1 && result.stderr.contains(message), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
    }

    @Test func exportsAModelArchiveAndPrintsTheContract() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try ModelDirectory.write(PredictorTests.model, to: fixture.url("model"), hyperparameters: [:], origin: "test")
        try ModelDirectory.archive(fixture.url("model"))
        let output = fixture.url("out/fcn.onnx")
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let result = try segment(["export", "--model", fixture.url("model/model.tar.gz").path, "--format", "onnx",
                                  "--output", output.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("input:  image  float32 [N, 3, H, W]"), "\(result.stdout)")
        #expect(result.stdout.contains("output: logits float32 [N, 3, H, W]"), "\(result.stdout)")
        let export = try ONNXExporter.export(PredictorTests.model)
        #expect(result.stdout.contains("parameters: \(export.parameterCount.formatted()) in"), "\(result.stdout)")
        // The file is the library's export, byte for byte; nothing else was left in the directory.
        #expect(try Data(contentsOf: output) == export.serializedData())
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.deletingLastPathComponent().path) == ["fcn.onnx"])

        let fixed = try segment(["export", "--model", fixture.url("model").path, "--output", fixture.url("out/fixed.onnx").path,
                                 "--size", "96,64", "--opset", "18"])
        #expect(fixed.status == 0 && fixed.stdout.contains("[N, 3, 96, 64]") && fixed.stdout.contains("opset 18"), "\(fixed.stderr)")
    }

    @Test func badRequestsFailWithOneLineAndNoFile() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try ModelDirectory.write(PredictorTests.model, to: fixture.url("fcn"), hyperparameters: [:], origin: "test")
        // A PSP model (weights need not be trained to check the request).
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        let psp = SegmentationNetwork(
            configuration: NetworkConfiguration(algorithm: .psp, classCount: 3, auxiliaryHead: false), builder: &builder)
        try ModelDirectory.write(SegmentationModel(network: psp, parameters: builder.store), to: fixture.url("psp"),
                                 hyperparameters: [:], origin: "test")
        try FileManager.default.createDirectory(at: fixture.url("out"), withIntermediateDirectories: true)
        let output = fixture.url("out/model.onnx").path
        func fcn(output: String = fixture.url("out/model.onnx").path) -> [String] { ["export", "--model", fixture.url("fcn").path, "--output", output] }

        expectOneLineError(try segment(fcn() + ["--format", "tflite"]), "unknown export format 'tflite'")
        expectOneLineError(try segment(["export", "--model", fixture.url("psp").path, "--output", output]),
                           "psp needs a fixed input size (--size H,W)")
        expectOneLineError(try segment(fcn() + ["--size", "0,480"]), "invalid input size '0,480'")
        expectOneLineError(try segment(fcn() + ["--size", "480,"]), "invalid input size '480,'")
        expectOneLineError(try segment(fcn() + ["--size", "20000,20000"]), "pixel limit")
        expectOneLineError(try segment(fcn() + ["--opset", "13"]), "opset 13 is not supported")
        expectOneLineError(try segment(["export", "--model", fixture.url("missing").path, "--output", output]), "missing")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.url("out").path).isEmpty)

        // Unwritable: the output's parent is a regular file. No temporary file is left anywhere.
        try fixture.write(Data("x".utf8), to: "out/file")
        expectOneLineError(try segment(fcn(output: fixture.url("out/file/model.onnx").path)), "cannot")
        expectOneLineError(try segment(fcn(output: fixture.url("no-such-directory/model.onnx").path)), "cannot")
        // A directory where the file should go: the rename fails, the temporary file is removed.
        try FileManager.default.createDirectory(at: fixture.url("out/taken.onnx"), withIntermediateDirectories: true)
        try fixture.write(Data("keep".utf8), to: "out/taken.onnx/inside")
        expectOneLineError(try segment(fcn(output: fixture.url("out/taken.onnx").path)), "cannot write")
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.url("out").path).sorted() == ["file", "taken.onnx"])
    }
}
