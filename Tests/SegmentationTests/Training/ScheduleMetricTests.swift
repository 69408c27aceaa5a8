import Foundation
@testable import Segmentation
import Testing

@Suite("Learning-rate schedules")
struct LearningRateScheduleTests {
    /// 100 samples, batch 10 → I = 10 iterations per epoch; 3 epochs → N = 29.
    func schedule(_ values: [String: String]) throws -> LearningRateSchedule {
        let (c, _) = try TrainingConfiguration.parse(
            ["num_classes": "3", "num_training_samples": "100", "mini_batch_size": "10", "epochs": "3", "learning_rate": "0.01"]
                .merging(values) { $1 })
        return LearningRateSchedule(configuration: c)
    }

    @Test func poly() throws {
        let s = try schedule(["lr_scheduler": "poly"])
        #expect(s.iterationsPerEpoch == 10 && s.lastIteration == 29)
        #expect(s(0) == 0.01)
        #expect(abs(s(10) - 0.01 * pow(1 - 10.0 / 29, 0.9)) < 1e-15)
        #expect(s(29) == 0 && s(500) == 0)
    }

    @Test func cosine() throws {
        let s = try schedule(["lr_scheduler": "cosine"])
        #expect(s(0) == 0.01)
        #expect(abs(s(10) - 0.01 * (1 + cos(Double.pi * 10 / 29)) / 2) < 1e-15)
        #expect(abs(s(29)) < 1e-18 && abs(s(40)) < 1e-18)
    }

    @Test func step() throws {
        let s = try schedule(["lr_scheduler": "step", "lr_scheduler_step": "1, 2", "lr_scheduler_factor": "0.1"])
        #expect(s(0) == 0.01 && s(9) == 0.01)          // before epoch 1's boundary (e·I = 10)
        #expect(abs(s(10) - 0.001) < 1e-15 && abs(s(19) - 0.001) < 1e-15)
        #expect(abs(s(20) - 0.0001) < 1e-15 && abs(s(29) - 0.0001) < 1e-15 && abs(s(1000) - 0.0001) < 1e-15)
    }

    @Test func fewerSamplesThanABatchStillHaveOneIteration() throws {
        let (c, _) = try TrainingConfiguration.parse(["num_classes": "3", "num_training_samples": "5", "mini_batch_size": "16", "epochs": "1"])
        let s = LearningRateSchedule(configuration: c)
        #expect(s.iterationsPerEpoch == 1 && s.lastIteration == 0 && s(0) == c.learningRate)
    }
}

@Suite("Metrics")
struct ConfusionMatrixTests {
    @Test func handComputedMatrixWithAnAbsentClass() {
        // 3 classes; class 2 never labeled nor predicted (except on an ignored pixel).
        var matrix = ConfusionMatrix(classCount: 3)
        matrix.add(predictions: [0, 1, 1, 1, 2, 0], labels: [0, 0, 1, 1, 255, 0])
        // pairs (label, prediction): (0,0) ×2, (0,1), (1,1) ×2
        #expect(matrix.count(label: 0, prediction: 0) == 2 && matrix.count(label: 0, prediction: 1) == 1)
        #expect(matrix.count(label: 1, prediction: 1) == 2 && matrix.labeledPixels == 5)
        #expect(matrix.pixelAccuracy == 0.8)
        // IoU0 = 2 / (3 + 2 − 2), IoU1 = 2 / (2 + 3 − 2), IoU2 = 0 (empty union counts 0)
        let expectedIoU: [Double] = [2.0 / 3, 2.0 / 3, 0]
        #expect(matrix.classIoU == expectedIoU)
        #expect(abs(matrix.meanIoU - 4.0 / 9) < 1e-15)
        #expect(abs(matrix.meanIoUOfPresentClasses! - 2.0 / 3) < 1e-15)
    }

    @Test func accumulatesAndMergesAcrossImages() {
        var whole = ConfusionMatrix(classCount: 2), a = ConfusionMatrix(classCount: 2), b = ConfusionMatrix(classCount: 2)
        whole.add(predictions: [0, 1, 1, 0], labels: [0, 1, 0, 0])
        a.add(predictions: [0, 1], labels: [0, 1])
        b.add(predictions: [1, 0], labels: [0, 0])
        a.merge(b)
        #expect(a == whole)
        #expect(whole.pixelAccuracy == 0.75)
    }

    @Test func nothingLabeled() {
        var matrix = ConfusionMatrix(classCount: 4)
        matrix.add(predictions: [1, 2], labels: [255, 255])
        #expect(matrix.pixelAccuracy == 0 && matrix.meanIoU == 0 && matrix.meanIoUOfPresentClasses == nil)
    }
}

@Suite("Early stopping")
struct EarlyStoppingTests {
    func run(_ values: [Double], minimumEpochs: Int, patience: Int, tolerance: Double) -> Int? {
        var stopper = EarlyStopping(minimumEpochs: minimumEpochs, patience: patience, tolerance: tolerance)
        for (index, value) in values.enumerated() where stopper.record(meanIoU: value) { return index + 1 }
        return nil
    }

    @Test func patience() {
        #expect(run([0.5, 0.6, 0.6, 0.6, 0.7], minimumEpochs: 0, patience: 2, tolerance: 0) == 4)
        #expect(run([0.5, 0.6, 0.6, 0.7, 0.7], minimumEpochs: 0, patience: 2, tolerance: 0) == nil)  // a gain resets the count
        #expect(run([0.5, 0.4, 0.3], minimumEpochs: 0, patience: 2, tolerance: 0) == 3)             // a drop is a stall
    }

    @Test func minimumEpochs() {
        #expect(run([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], minimumEpochs: 5, patience: 1, tolerance: 0) == 5)
        #expect(run([0.5, 0.5], minimumEpochs: 5, patience: 1, tolerance: 0) == nil)
    }

    @Test func tolerance() {
        // 0.5 → 0.54 is +8 %, below a 10 % tolerance: stalled; 0.5 → 0.56 is +12 %: improved.
        #expect(run([0.5, 0.54], minimumEpochs: 0, patience: 1, tolerance: 0.1) == 2)
        #expect(run([0.5, 0.56], minimumEpochs: 0, patience: 1, tolerance: 0.1) == nil)
        // A zero best: any gain counts, and a zero mIOU is no gain.
        #expect(run([0, 0.01], minimumEpochs: 0, patience: 2, tolerance: 0.5) == nil)
        #expect(run([0, 0], minimumEpochs: 0, patience: 2, tolerance: 0) == 2)
    }
}
