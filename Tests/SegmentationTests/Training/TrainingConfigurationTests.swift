import Foundation
@testable import Segmentation
import Testing

@Suite("Hyperparameters")
struct TrainingConfigurationTests {
    @Test func defaultsAreSageMakers() throws {
        let (c, notes) = try TrainingConfiguration.parse(["num_classes": "21", "num_training_samples": "1464"])
        #expect(notes.isEmpty)
        #expect(c.backbone == .resnet50 && c.usePretrainedModel && c.algorithm == .fcn)
        #expect(c.baseSize == 520 && c.cropSize == 240 && c.epochs == 10)
        #expect(!c.earlyStopping && c.earlyStoppingMinEpochs == 5 && c.earlyStoppingPatience == 4 && c.earlyStoppingTolerance == 0)
        #expect(c.gamma1 == 0.9 && c.gamma2 == 0.9 && c.learningRate == 0.001 && c.lrScheduler == .poly)
        #expect(c.lrSchedulerFactor == 0.1 && c.lrSchedulerStep == nil && c.miniBatchSize == 16 && c.momentum == 0.9)
        #expect(c.optimizer == .sgd && !c.syncBN && c.validationMiniBatchSize == 16 && c.weightDecay == 0.0001)
        #expect(c.auxiliaryWeight == 0.5)
        #expect(TrainingConfiguration.specifications.filter { !$0.key.hasPrefix("_") }.count == 24)
        #expect(c == TrainingConfiguration(numClasses: 21, numTrainingSamples: 1464))
    }

    @Test func sageMakerStringsAndNativeJSONAgree() throws {
        let strings = """
            {"num_classes": "5", "num_training_samples": "300", "use_pretrained_model": "False", "early_stopping": "TRUE",
             "learning_rate": "0.01", "lr_scheduler": "step", "lr_scheduler_step": "10, 20", "mini_batch_size": "8",
             "algorithm": "psp", "backbone": "resnet-101", "optimizer": "adam"}
            """
        let native = """
            {"num_classes": 5, "num_training_samples": 300, "use_pretrained_model": false, "early_stopping": true,
             "learning_rate": 0.01, "lr_scheduler": "step", "lr_scheduler_step": "10,20", "mini_batch_size": 8,
             "algorithm": "psp", "backbone": "resnet-101", "optimizer": "adam"}
            """
        let (a, _) = try TrainingConfiguration.parse(json: Data(strings.utf8), file: "a.json")
        let (b, _) = try TrainingConfiguration.parse(json: Data(native.utf8), file: "b.json")
        #expect(a == b)
        #expect(a.numClasses == 5 && !a.usePretrainedModel && a.earlyStopping && a.lrSchedulerStep == [10, 20])
        #expect(a.algorithm == .psp && a.backbone == .resnet101 && a.optimizer == .adam && a.miniBatchSize == 8)
    }

    @Test func cropSizeRoundsUpToAMultipleOfEight() throws {
        let (c, notes) = try TrainingConfiguration.parse(["num_classes": "3", "num_training_samples": "10", "crop_size": "250"])
        #expect(c.cropSize == 256)
        #expect(notes.count == 1 && notes[0].contains("250") && notes[0].contains("256"))
    }

    @Test func errorsNameTheKeyTheValueAndTheRange() throws {
        func error(_ values: [String: String]) -> ConfigurationError? {
            do { _ = try TrainingConfiguration.parse(values); return nil } catch { return error as? ConfigurationError }
        }
        let base = ["num_classes": "3", "num_training_samples": "10"]
        #expect(error(base.merging(["learning_rate": "2"]) { $1 })
                == .invalid(key: "learning_rate", value: "2", expected: "a number in (0, 1]"))
        #expect(error(base.merging(["num_classes": "255"]) { $1 })
                == .invalid(key: "num_classes", value: "255", expected: "an integer from 2 to 254"))
        #expect(error(base.merging(["mini_batch_size": "1.5"]) { $1 })
                == .invalid(key: "mini_batch_size", value: "1.5", expected: "an integer > 0"))
        #expect(error(base.merging(["optimizer": "lamb"]) { $1 })
                == .invalid(key: "optimizer", value: "lamb", expected: "one of adam, adagrad, nag, rmsprop, sgd"))
        #expect(error(base.merging(["syncbn": "yes"]) { $1 }) == .invalid(key: "syncbn", value: "yes", expected: "true or false"))
        #expect(error(base.merging(["learning_rat": "0.1"]) { $1 }) == .unknownKey("learning_rat", suggestion: "learning_rate"))
        #expect(error(base.merging(["completely_unrelated_thing": "1"]) { $1 }) == .unknownKey("completely_unrelated_thing", suggestion: nil))
        #expect(error(["num_classes": "3"]) == .missing("num_training_samples"))
        if case .invalid(let key, _, let expected)? = error(base.merging(["lr_scheduler": "step"]) { $1 }) {
            #expect(key == "lr_scheduler_step" && expected.contains("required when lr_scheduler=step"))
        } else {
            Issue.record("step without lr_scheduler_step was accepted")
        }
        #expect(error(base.merging(["lr_scheduler": "step", "lr_scheduler_step": "20, 10"]) { $1 }) != nil)
        #expect(ConfigurationError.invalid(key: "momentum", value: "0", expected: "a number in (0, 1]").description
                == "hyperparameter 'momentum' = '0' is invalid: expected a number in (0, 1]")
        #expect(throws: ConfigurationError.malformedFile("h.json", reason: "not valid JSON")) {
            try TrainingConfiguration.parse(json: Data("{num_classes: 3".utf8), file: "h.json")
        }
    }

    @Test func resolvedHyperparametersRoundTripAndOverride() throws {
        let (c, _) = try TrainingConfiguration.parse(["num_classes": "3", "num_training_samples": "10", "lr_scheduler": "step",
                                                      "lr_scheduler_step": "3,6", "weight_decay": "0.0005"])
        let (again, _) = try TrainingConfiguration.parse(c.hyperparameters)
        #expect(again == c)
        #expect(c.hyperparameters["lr_scheduler_step"] == "3, 6" && c.hyperparameters["use_pretrained_model"] == "True")
        let (overridden, _) = try c.overriding(["epochs": "2", "optimizer": "nag"])
        #expect(overridden.epochs == 2 && overridden.optimizer == .nag && overridden.weightDecay == 0.0005)
        #expect(throws: ConfigurationError.unknownKey("epoch", suggestion: "epochs")) { try c.overriding(["epoch": "2"]) }
    }
}

@Suite("Hyperparameter docs")
struct HyperparameterDocsTests {
    /// Docs/hyperparameters.md lists every key with its default, so the page cannot drift from the code.
    @Test func everyKeyAndDefaultIsDocumented() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Docs/hyperparameters.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for specification in TrainingConfiguration.specifications {
            let row = text.split(separator: "\n").first { $0.hasPrefix("| \(specification.key) |") }
            #expect(row != nil, "\(specification.key) is not in Docs/hyperparameters.md")
            if let row, let value = specification.defaultValue {
                #expect(row.contains("| \(value) |"), "\(specification.key): the docs do not show the default \(value)")
            }
        }
    }
}
