import Foundation
@testable import Segmentation
import Testing

/// End to end: a generated data set in the channel layout, a short run of
/// each algorithm, and the SPEC §6 artifacts.
@Suite("Trainer", .serialized)
struct TrainerTests {
    /// 64×56 images: a textured disc of class 1-3 on a striped background (0).
    static func writeDataset(_ fixture: DatasetFixture, train: Int, validation: Int) throws {
        var generator = SplitMix64(seed: 21)
        for (split, count) in [("train", train), ("validation", validation)] {
            for index in 0..<count {
                let (width, height) = (64, 56)
                var pixels = [UInt8](repeating: 0, count: width * height * 3)
                var labels = [UInt8](repeating: 0, count: width * height)
                let cx = Int.random(in: 16..<48, using: &generator), cy = Int.random(in: 16..<40, using: &generator)
                let radius = Int.random(in: 8..<16, using: &generator), label = UInt8(1 + index % 3)
                for y in 0..<height {
                    for x in 0..<width {
                        let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < radius * radius
                        let i = (y * width + x) * 3
                        let texture: UInt8 = inside ? UInt8(((x * Int(label) + y) % 4) * 40) : UInt8(((x + y) / 3 % 2) * 60)
                        pixels[i] = 90 &+ texture
                        pixels[i + 1] = inside ? 60 &+ UInt8(label) * 30 : 100
                        pixels[i + 2] = 120 &- texture / 2
                        labels[y * width + x] = inside ? label : 0
                    }
                }
                try fixture.write(ImageCodec.encodePNG(rgb: RGBImage(width: width, height: height, pixels: pixels)),
                                  to: "\(split)/\(index).png")
                try fixture.writeAnnotation("\(split)_annotation/\(index).png", width: width, height: height, values: labels)
            }
        }
    }

    /// Two epochs of four Adam steps on the textured-shapes data: every
    /// artifact is written, the log lines parse, and the training loss falls.
    @Test(arguments: [SegmentationAlgorithm.fcn, .psp, .deeplab])
    func shortRunWritesEveryArtifactAndTheLossFalls(_ algorithm: SegmentationAlgorithm) throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try SyntheticShapes(classCount: 4, sizes: 64...72, seed: 3).write(to: fixture.root, trainCount: 8, validationCount: 2)
        let (configuration, _) = try TrainingConfiguration.parse([
            "num_classes": "4", "num_training_samples": "8", "algorithm": algorithm.rawValue, "epochs": "2",
            "mini_batch_size": "2", "validation_mini_batch_size": "1", "crop_size": "64", "base_size": "64",
            "use_pretrained_model": "False", "optimizer": "adam", "learning_rate": "0.001", "_logging_frequency": "2",
        ])
        let modelDirectory = fixture.url("model")
        var lines: [String] = []
        var progress = 0
        var iterations = 0
        let summaries = try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: modelDirectory)
            .run { event in
                switch event {
                case .epoch(_, let epochLines): lines += epochLines
                case .progress: progress += 1
                case .note: break
                case .iteration(_, let step, let steps, let meanLoss, _):
                    iterations += 1
                    #expect(step <= steps && meanLoss.isFinite)
                }
            }
        #expect(summaries.count == 2 && progress == 4 && iterations == 8)
        #expect(summaries[1].trainLoss < summaries[0].trainLoss, "train loss \(summaries.map(\.trainLoss))")
        let mIOUs = lines.compactMap { line -> Double? in
            guard let range = line.range(of: #"validation mIOU: ([0-9.]+)"#, options: .regularExpression) else { return nil }
            return Double(line[range].split(separator: " ").last!)
        }
        #expect(mIOUs.count == 2 && mIOUs.allSatisfy { (0...1).contains($0) })
        #expect(lines.first == SageMakerLog.trainLoss(epoch: 0, summaries[0].trainLoss))
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: modelDirectory.path))
        #expect(files == ["hyperparams.json", "model.json", "model_best.safetensors", "model_last.safetensors",
                          "metrics.jsonl", "training-curves.png", "model.tar.gz"])
        let metrics = try String(contentsOf: modelDirectory.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(metrics.split(separator: "\n").count == 2)
        let model = try ModelDirectory.read(modelDirectory.appendingPathComponent("model.tar.gz"))
        #expect(model.configuration.algorithm == algorithm && model.configuration.classCount == 4 && model.cropSize == 64)
        let hyperparameters = try JSONDecoder().decode([String: String].self,
                                                       from: Data(contentsOf: modelDirectory.appendingPathComponent("hyperparams.json")))
        #expect(hyperparameters["algorithm"] == algorithm.rawValue && hyperparameters["use_pretrained_model"] == "False")
    }

    @Test func missingPretrainedWeightsSayWhereToPutThem() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try Self.writeDataset(fixture, train: 2, validation: 1)
        let (configuration, _) = try TrainingConfiguration.parse(["num_classes": "4", "num_training_samples": "2", "epochs": "1"])
        let trainer = Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: fixture.url("model"),
                              cacheDirectory: fixture.url("empty-cache"), allowDownload: false)
        do {
            try trainer.run()
            Issue.record("training started without pretrained weights")
        } catch let error as PretrainedBackbone.PretrainedError {
            #expect(error.description.contains("resnet50_v1s-25a187fa.params") && error.description.contains("use_pretrained_model=False"))
        }
    }

    struct Killed: Error {}

    /// A run stopped after epoch 1 (its checkpoint written, nothing after)
    /// and resumed ends with the same bytes as an uninterrupted run.
    @Test func resumedRunIsBitIdentical() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try Self.writeDataset(fixture, train: 4, validation: 2)
        let (configuration, _) = try TrainingConfiguration.parse([
            "num_classes": "4", "num_training_samples": "4", "epochs": "3", "mini_batch_size": "2",
            "validation_mini_batch_size": "1", "crop_size": "32", "base_size": "48", "use_pretrained_model": "False",
            "optimizer": "adam", "learning_rate": "0.001", "_seed": "5",
        ])
        let whole = fixture.url("whole"), killed = fixture.url("killed"), checkpoints = fixture.url("checkpoints")
        try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: whole).run()
        #expect(throws: Killed.self) {
            try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: killed,
                        checkpointDirectory: checkpoints).run { event in
                if case .epoch(let summary, _) = event, summary.epoch == 1 { throw Killed() }
            }
        }
        var resumedNote = false
        try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: killed,
                    checkpointDirectory: checkpoints, resume: true).run { event in
            if case .note(let text) = event, text.contains("resuming") { resumedNote = true }
        }
        #expect(resumedNote)
        let a = try SafeTensorsFile(contentsOf: whole.appendingPathComponent("model_last.safetensors")).tensors
        let b = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("model_last.safetensors")).tensors
        #expect(a.count == b.count && a.keys.allSatisfy { a[$0] == b[$0] }, "resumed weights differ")
        let metricsA = try String(contentsOf: whole.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let metricsB = try String(contentsOf: killed.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        #expect(metricsA.split(separator: "\n").count == 3 && metricsB.split(separator: "\n").count == 3)

        // Different hyperparameters refuse to resume, naming the key.
        let (other, _) = try configuration.overriding(["learning_rate": "0.01"])
        #expect(throws: ConfigurationError.self) {
            try Trainer(configuration: other, dataDirectory: fixture.root, modelDirectory: killed,
                        checkpointDirectory: checkpoints, resume: true).run()
        }
    }

    @Test func incrementalTrainingStartsFromAPriorModelAndRefusesMismatches() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try Self.writeDataset(fixture, train: 2, validation: 1)
        let values = ["num_classes": "4", "num_training_samples": "2", "epochs": "1", "mini_batch_size": "2",
                      "validation_mini_batch_size": "1", "crop_size": "32", "base_size": "48", "use_pretrained_model": "False"]
        let (configuration, _) = try TrainingConfiguration.parse(values)
        let first = fixture.url("first")
        try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: first).run()
        let prior = first.appendingPathComponent("model.tar.gz")
        var sawNote = false
        try Trainer(configuration: configuration, dataDirectory: fixture.root, modelDirectory: fixture.url("second"),
                    priorModel: prior).run { event in
            if case .note(let text) = event, text.contains("incremental") { sawNote = true }
        }
        #expect(sawNote)
        for (key, value) in [("num_classes", "5"), ("crop_size", "40"), ("algorithm", "psp")] {
            let (other, _) = try TrainingConfiguration.parse(values.merging([key: value]) { $1 })
            do {
                try Trainer(configuration: other, dataDirectory: fixture.root, modelDirectory: fixture.url("third"),
                            priorModel: prior).run()
                Issue.record("a prior model with another \(key) was accepted")
            } catch let error as ConfigurationError {
                if case .invalid(let named, _, _) = error { #expect(named == key) } else { Issue.record("\(error)") }
            }
        }
    }
}
