import Foundation
@testable import Segmentation
import Testing

@Suite("SageMaker log lines")
struct TrainingLogTests {
    @Test func linesMatchSageMakersFormatExactly() {
        let summary = EpochSummary(epoch: 3, trainLoss: 0.48121, validationPixelAccuracy: 0.90158, validationMeanIoU: 0.64962,
                                   validationMeanIoUPresent: 0.7, validationClassIoU: [0.5, 0.8], throughput: 5.21,
                                   learningRate: 0.000098, seconds: 12)
        #expect(SageMakerLog.epochLines(summary) == [
            "#quality_metric. host: algo-1, epoch: 3, train loss: 0.4812 .",
            "#quality_metric. host: algo-1, epoch: 3, validation pixel_accuracy: 0.9016 .",
            "#quality_metric. host: algo-1, epoch: 3, validation mIOU: 0.6496 .",
            "#throughput_metric. host: algo-1, epoch: 3, train throughput: 5.2 samples/sec.",
        ])
        #expect(SageMakerLog.progress(epoch: 3, iterations: 20, samplesPerSecond: 5.12, learningRate: 0.000098)
                == "#progress_notice. epoch: 3, iterations: 20 speed: 5.1 samples/sec learning_rate: 0.000098")
        // The regex the end-to-end test and users grep with.
        let line = SageMakerLog.meanIoU(epoch: 0, 0.25)
        #expect(line.range(of: #"validation mIOU: ([0-9.]+)"#, options: .regularExpression) != nil)
    }

    @Test func metricsLineIsOneJSONObject() throws {
        let summary = EpochSummary(epoch: 0, trainLoss: 1, validationPixelAccuracy: 0.5, validationMeanIoU: 0.25,
                                   validationMeanIoUPresent: nil, validationClassIoU: [0.25, 0.25], throughput: 1,
                                   learningRate: 0.01, seconds: 1)
        let line = summary.jsonLine
        #expect(!line.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        #expect(object["validation_mIOU"] as? Double == 0.25 && object["epoch"] as? Int == 0)
        #expect(try JSONDecoder().decode(EpochSummary.self, from: Data(line.utf8)) == summary)
    }
}
