import Foundation
@testable import Segmentation
import Testing

/// `segment train --sagemaker` against a fake container root, run as a real
/// subprocess (the binary `swift test` builds beside the test bundle).
@Suite("SageMaker container mode", .serialized)
struct SageMakerModeTests {
    static var segmentBinary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/release/segment")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = Self.segmentBinary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test func trainsFromOptMLAndReportsFailures() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.segmentBinary.path),
                     "\(Self.segmentBinary.path) was not built; run the tests with swift test -c release")
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let environment = SageMakerEnvironment(root: fixture.root)
        try TrainerTests.writeDataset(DatasetFixture(root: environment.dataDirectory), train: 2, validation: 1)
        try fixture.write("""
            {"num_classes": "4", "num_training_samples": "2", "epochs": "1", "mini_batch_size": "2",
             "validation_mini_batch_size": "1", "crop_size": "32", "base_size": "48", "use_pretrained_model": "False"}
            """, to: "opt/ml/input/config/hyperparameters.json")
        let ok = try run(["train", "--sagemaker", "--sagemaker-root", fixture.root.path])
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        #expect(ok.stdout.contains("#quality_metric. host: algo-1, epoch: 0, validation mIOU:"))
        #expect(FileManager.default.fileExists(atPath: environment.modelDirectory.appendingPathComponent("model.tar.gz").path))
        #expect(!FileManager.default.fileExists(atPath: environment.failureFile.path))

        // A bad hyperparameter: non-zero exit, the reason on stderr and in /opt/ml/output/failure.
        try fixture.write(#"{"num_classes": "4", "num_training_samples": "2", "learning_rate": "7"}"#,
                          to: "opt/ml/input/config/hyperparameters.json")
        let failed = try run(["train", "--sagemaker", "--sagemaker-root", fixture.root.path])
        #expect(failed.status != 0)
        let reason = try String(contentsOf: environment.failureFile, encoding: .utf8)
        #expect(reason.contains("learning_rate") && reason.contains("'7'"))
        #expect(failed.stderr.contains("learning_rate"))
    }
}
