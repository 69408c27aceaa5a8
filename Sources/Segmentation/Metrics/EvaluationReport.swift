import Foundation

extension ConfusionMatrix {
    /// Pixels labelled `classID` (a row of the matrix).
    public func labelledPixels(ofClass classID: Int) -> Int {
        (0..<classCount).reduce(0) { $0 + count(label: classID, prediction: $1) }
    }

    /// Pixels predicted as `classID` among the labelled ones (a column).
    public func predictedPixels(ofClass classID: Int) -> Int {
        (0..<classCount).reduce(0) { $0 + count(label: $1, prediction: classID) }
    }

    /// The SPEC §8 JSON object of `segment evaluate --json`.
    public var report: EvaluationReport { EvaluationReport(self) }

    /// The text report of `segment evaluate`: totals, then a row per class
    /// with its IoU ("-" for a class in neither labels nor predictions) and
    /// its labelled and predicted pixel counts.
    public func table(imageCount: Int) -> String {
        var lines = [
            String(format: "images: %d   labelled pixels: %d", imageCount, labeledPixels),
            String(format: "pixel accuracy: %.4f", pixelAccuracy),
            String(format: "mIOU: %.4f (all %d classes)   mIOU over present classes: %@", meanIoU, classCount,
                   meanIoUOfPresentClasses.map { String(format: "%.4f", $0) } ?? "-"),
            "class  IoU     labelled pixels  predicted pixels",
        ]
        for (id, (iou, pair)) in zip(classIoU, intersectionAndUnion).enumerated() {
            lines.append(String(format: "%5d  %@  %15d  %16d", id, pair.union == 0 ? "  -   " : String(format: "%.4f", iou),
                                labelledPixels(ofClass: id), predictedPixels(ofClass: id)))
        }
        return lines.joined(separator: "\n")
    }
}

/// The metrics of one evaluation as SPEC §8 names them: `pixel_accuracy`,
/// `mIOU` (over all classes), `per_class_iou` and `mIOU_present` (over the
/// classes in labels or predictions; JSON null when there is none, the key
/// is always written).
public struct EvaluationReport: Codable, Sendable, Equatable {
    public var pixelAccuracy: Double
    public var meanIoU: Double
    public var classIoU: [Double]
    public var meanIoUOfPresentClasses: Double?

    public init(_ matrix: ConfusionMatrix) {
        pixelAccuracy = matrix.pixelAccuracy
        meanIoU = matrix.meanIoU
        classIoU = matrix.classIoU
        meanIoUOfPresentClasses = matrix.meanIoUOfPresentClasses
    }

    enum CodingKeys: String, CodingKey {
        case pixelAccuracy = "pixel_accuracy", meanIoU = "mIOU", classIoU = "per_class_iou"
        case meanIoUOfPresentClasses = "mIOU_present"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pixelAccuracy, forKey: .pixelAccuracy)
        try container.encode(meanIoU, forKey: .meanIoU)
        try container.encode(classIoU, forKey: .classIoU)
        try container.encode(meanIoUOfPresentClasses, forKey: .meanIoUOfPresentClasses)  // null when nil
    }
}
