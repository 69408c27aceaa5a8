/// Counts of (label, prediction) pairs over non-ignored pixels, accumulated
/// over a whole validation set; the metrics of SPEC §5 (as GluonCV's
/// `SegmentationMetric`).
public struct ConfusionMatrix: Sendable, Equatable {
    public let classCount: Int
    /// counts[label · classCount + prediction]
    public private(set) var counts: [Int]

    public init(classCount: Int) {
        precondition(classCount > 0)
        self.classCount = classCount
        counts = [Int](repeating: 0, count: classCount * classCount)
    }

    /// Adds one image's (or batch's) pixels; labels equal to 255 are skipped.
    /// A label ≥ classCount other than 255 is a caller bug (the data layer rejects them).
    public mutating func add(predictions: [UInt8], labels: [UInt8]) {
        precondition(predictions.count == labels.count, "\(predictions.count) predictions for \(labels.count) labels")
        let k = classCount
        counts.withUnsafeMutableBufferPointer { c in
            for i in labels.indices where labels[i] != ignoreLabel {
                let label = Int(labels[i]), prediction = Int(predictions[i])
                precondition(label < k && prediction < k, "class id out of range")
                c[label * k + prediction] += 1
            }
        }
    }

    /// Merges counts from another shard of the same evaluation.
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classCount == classCount)
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    /// Sums the counts over data-parallel workers that each scored a share
    /// of the set (Double sums are exact below 2⁵³ pixels).
    public mutating func sumOverWorkers(_ communicator: any Communicator) {
        var values = counts.map(Double.init)
        communicator.allReduceSum(&values)
        counts = values.map { Int($0) }
    }

    public func count(label: Int, prediction: Int) -> Int { counts[label * classCount + prediction] }

    /// Non-ignored pixels seen.
    public var labeledPixels: Int { counts.reduce(0, +) }

    /// correct / labeled over non-ignored pixels (0 with no labeled pixel).
    public var pixelAccuracy: Double {
        let correct = (0..<classCount).reduce(0) { $0 + count(label: $1, prediction: $1) }
        return labeledPixels > 0 ? Double(correct) / Double(labeledPixels) : 0
    }

    /// (intersection, union) per class: true positives, and TP + FP + FN.
    public var intersectionAndUnion: [(intersection: Int, union: Int)] {
        (0..<classCount).map { c in
            let truePositive = count(label: c, prediction: c)
            let labeled = (0..<classCount).reduce(0) { $0 + count(label: c, prediction: $1) }
            let predicted = (0..<classCount).reduce(0) { $0 + count(label: $1, prediction: c) }
            return (truePositive, labeled + predicted - truePositive)
        }
    }

    /// IoU per class; a class with an empty union scores 0 (GluonCV's 0/ε).
    public var classIoU: [Double] {
        intersectionAndUnion.map { $0.union > 0 ? Double($0.intersection) / Double($0.union) : 0 }
    }

    /// Mean IoU over **all** classes, empty-union classes counting 0, as GluonCV and SageMaker report it.
    public var meanIoU: Double {
        classIoU.reduce(0, +) / Double(classCount)
    }

    /// Mean IoU over the classes with a non-empty union (nil when there is none).
    public var meanIoUOfPresentClasses: Double? {
        let present = intersectionAndUnion.enumerated().filter { $0.element.union > 0 }
        guard !present.isEmpty else { return nil }
        return present.map { Double($0.element.intersection) / Double($0.element.union) }.reduce(0, +) / Double(present.count)
    }
}
