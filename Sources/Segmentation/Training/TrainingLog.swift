import Foundation

/// One epoch's numbers: a line of metrics.jsonl and the source of the
/// SageMaker log lines and the training curves.
public struct EpochSummary: Codable, Sendable, Equatable {
    /// 0-based, as SageMaker logs it.
    public var epoch: Int
    public var trainLoss: Double
    public var validationPixelAccuracy: Double
    public var validationMeanIoU: Double
    /// Mean IoU over classes with a non-empty union (nil when none).
    public var validationMeanIoUPresent: Double?
    public var validationClassIoU: [Double]
    /// Training samples per second over the epoch.
    public var throughput: Double
    /// Learning rate at the epoch's last iteration.
    public var learningRate: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case epoch
        case trainLoss = "train_loss"
        case validationPixelAccuracy = "validation_pixel_accuracy"
        case validationMeanIoU = "validation_mIOU"
        case validationMeanIoUPresent = "validation_mIOU_present"
        case validationClassIoU = "validation_per_class_iou"
        case throughput = "train_throughput"
        case learningRate = "learning_rate"
        case seconds
    }

    /// One JSON object on one line (metrics.jsonl).
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}

/// The log lines SageMaker's algorithm prints (SPEC §5), 0-based epochs.
public enum SageMakerLog {
    /// The host of a single-instance job; `--sagemaker` on several instances
    /// names each from resourceconfig.json's `current_host`.
    public static let host = "algo-1"

    public static func trainLoss(epoch: Int, _ loss: Double, host: String = host) -> String {
        "#quality_metric. host: \(host), epoch: \(epoch), train loss: \(String(format: "%.4f", loss)) ."
    }

    public static func pixelAccuracy(epoch: Int, _ value: Double, host: String = host) -> String {
        "#quality_metric. host: \(host), epoch: \(epoch), validation pixel_accuracy: \(String(format: "%.4f", value)) ."
    }

    public static func meanIoU(epoch: Int, _ value: Double, host: String = host) -> String {
        "#quality_metric. host: \(host), epoch: \(epoch), validation mIOU: \(String(format: "%.4f", value)) ."
    }

    public static func throughput(epoch: Int, samplesPerSecond: Double, host: String = host) -> String {
        "#throughput_metric. host: \(host), epoch: \(epoch), train throughput: \(String(format: "%.1f", samplesPerSecond)) samples/sec."
    }

    public static func progress(epoch: Int, iterations: Int, samplesPerSecond: Double, learningRate: Double) -> String {
        "#progress_notice. epoch: \(epoch), iterations: \(iterations) speed: \(String(format: "%.1f", samplesPerSecond)) samples/sec learning_rate: \(String(format: "%.6f", learningRate))"
    }

    /// The four end-of-epoch lines, in SageMaker's order.
    public static func epochLines(_ summary: EpochSummary, host: String = host) -> [String] {
        [trainLoss(epoch: summary.epoch, summary.trainLoss, host: host),
         pixelAccuracy(epoch: summary.epoch, summary.validationPixelAccuracy, host: host),
         meanIoU(epoch: summary.epoch, summary.validationMeanIoU, host: host),
         throughput(epoch: summary.epoch, samplesPerSecond: summary.throughput, host: host)]
    }
}
