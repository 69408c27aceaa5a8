import Foundation
@testable import Segmentation
import Testing

/// `segment train --sagemaker` against a fake container root, run as a real
/// subprocess (the binary `swift test` builds beside the test bundle).
@Suite("SageMaker container mode", .serialized)
struct SageMakerModeTests {
    /// The `segment` built beside the test bundle (whatever the scratch path).
    static var segmentBinary: URL {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("segment")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
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

    /// A real SIGKILL after epoch 1, then --resume: the final weights equal an
    /// uninterrupted run's, byte for byte.
    @Test func killedAndResumedRunIsBitIdentical() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.segmentBinary.path))
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try TrainerTests.writeDataset(fixture, train: 4, validation: 1)
        let settings = ["num_classes=4", "num_training_samples=4", "epochs=4", "mini_batch_size=2", "validation_mini_batch_size=1",
                        "crop_size=32", "base_size=48", "use_pretrained_model=False", "optimizer=nag", "_seed=3"]
            .flatMap { ["--set", $0] }
        let whole = try run(["train", "--data", fixture.root.path, "--model-dir", fixture.url("whole").path] + settings)
        #expect(whole.status == 0, "stderr: \(whole.stderr)")

        let process = Process()
        process.executableURL = Self.segmentBinary
        process.arguments = ["train", "--data", fixture.root.path, "--model-dir", fixture.url("killed").path,
                             "--checkpoint-dir", fixture.url("checkpoints").path] + settings
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for epoch 1's checkpoint (two lines of metrics.jsonl), then kill without warning.
        let metrics = fixture.url("killed/metrics.jsonl")
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            let lines = (try? String(contentsOf: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= 2 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the run finished before it could be killed")

        let resumed = try run(["train", "--data", fixture.root.path, "--model-dir", fixture.url("killed").path,
                               "--checkpoint-dir", fixture.url("checkpoints").path, "--resume"] + settings)
        #expect(resumed.status == 0, "stderr: \(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming"))
        let a = try SafeTensorsFile(contentsOf: fixture.url("whole/model_last.safetensors")).tensors
        let b = try SafeTensorsFile(contentsOf: fixture.url("killed/model_last.safetensors")).tensors
        #expect(a.count == b.count && a.keys.allSatisfy { a[$0] == b[$0] }, "resumed weights differ")
    }
}
