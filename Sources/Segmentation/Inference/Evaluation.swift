import Foundation

extension Predictor {
    /// Scores the model on a labelled data set (SPEC §5 metrics): every
    /// image of `dataset` through the network, accumulated in one confusion
    /// matrix. `batchSize` follows validation_mini_batch_size: 1 scores each
    /// whole image at its own size; more scores center crops of `cropSize`
    /// (the model's training crop when nil) that many at a time.
    /// `progress(done, total)` is called after each batch. `indices` limits
    /// the scoring to part of the set (a data-parallel worker's share; the
    /// workers' matrices add up to the whole set's).
    public func evaluate(_ dataset: ChannelDataset, batchSize: Int = 1, cropSize: Int? = nil, indices: Range<Int>? = nil,
                         progress: (Int, Int) throws -> Void = { _, _ in }) throws -> ConfusionMatrix {
        var crop: Int?
        if batchSize > 1 {
            guard let side = cropSize ?? model.cropSize else { throw EvaluationError.cropSizeUnknown }
            crop = side
        }
        // The memory guard is for running the network on a whole image; center
        // crops run at the crop's size, so their images need only the decode limit.
        let batches = ValidationBatches(dataset: dataset, batchSize: batchSize, classCount: classCount,
                                        transform: ValidationTransform(cropSize: crop, normalization: model.normalization),
                                        maximumPixels: crop == nil ? maximumPixels : ImageCodec.defaultMaximumPixels,
                                        indices: indices)
        var matrix = ConfusionMatrix(classCount: classCount)
        var done = 0
        for result in batches {
            let batch = try result.get()
            matrix.add(predictions: argmaxClasses(network(batch.images)), labels: batch.labels)
            done += batch.names.count
            try progress(done, indices?.count ?? dataset.count)
        }
        return matrix
    }
}

public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    case cropSizeUnknown

    public var description: String {
        "validation mini-batches above 1 score center crops, and this model does not record its training crop size "
            + "(an imported model?): pass a crop size, or use a mini-batch size of 1 to score whole images"
    }
}
