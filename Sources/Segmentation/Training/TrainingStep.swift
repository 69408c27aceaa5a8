import Foundation

/// One training iteration of one worker (SPEC §5, §10): forward with aux,
/// loss, backward, gradients summed over the workers, optimizer update, BN
/// running statistics. With a `SingleProcessCommunicator` it is the plain
/// single-process step.
///
/// Each worker passes its contiguous share of the global batch. Losses are
/// means over the global batch's non-ignored pixels, so the workers'
/// gradients add up to the global batch's gradient; with `syncBatchNorm`,
/// BN statistics are the global batch's too, and N workers compute what one
/// worker computes with the whole batch (up to float summation order).
public final class TrainingStep {
    public let network: SegmentationNetwork
    public let loss: SegmentationLoss
    public let communicator: any Communicator
    public let syncBatchNorm: Bool
    public let workspace: Workspace
    private var gradients: ParameterStore
    private let reducer: GradientReducer?

    /// Seconds the last step waited for the gradient sums after its backward.
    public var lastCommunicationWaitSeconds: Double { reducer?.lastWaitSeconds ?? 0 }

    /// Multiply-adds of the last step's forward convolutions (for GFLOP/s reports).
    public private(set) var lastConvolutionMultiplyAdds = 0

    public struct Result: Sendable {
        /// The global batch's loss (main + aux weight · aux), the same on every worker.
        public var loss: Float
        /// Non-ignored pixels of the global batch.
        public var validPixels: Int
    }

    public init(network: SegmentationNetwork, parameters: ParameterStore, loss: SegmentationLoss,
                communicator: any Communicator = SingleProcessCommunicator(), syncBatchNorm: Bool = false,
                workspace: Workspace = Workspace()) {
        self.network = network
        self.loss = loss
        self.communicator = communicator
        self.syncBatchNorm = syncBatchNorm
        self.workspace = workspace
        gradients = parameters.zerosLikeTrainable()
        if communicator.size > 1 {
            let reducer = GradientReducer(parameters: parameters, communicator: communicator)
            gradients.gradientObserver = reducer
            self.reducer = reducer
        } else {
            reducer = nil
        }
    }

    deinit { reducer?.stop() }

    /// Runs one step on this worker's share `batch` of the global batch,
    /// whose first sample is sample `firstSample` of the global batch.
    /// Returns without updating anything when the global loss is not finite
    /// (on every worker alike).
    ///
    /// - Parameter seed: the dropout seed of this iteration (the same on every worker).
    public func run(_ batch: Batch, firstSample: Int = 0, seed: UInt64, parameters: inout ParameterStore,
                    optimizer: inout Optimizer, learningRate: Double) -> Result {
        let workers = communicator.size
        var validPixels = [Double(batch.labels.reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) })]
        communicator.allReduceSum(&validPixels)
        let context = ForwardContext(mode: .training, workspace: workspace, seed: seed)
        context.firstSample = firstSample
        if syncBatchNorm && workers > 1 {
            let communicator = communicator
            context.batchNormReduction = { communicator.allReduceSum($0) }
        }
        let (output, cache) = network.forward(batch.images, parameters: parameters, context: context)
        lastConvolutionMultiplyAdds = context.convolutionMultiplyAdds
        let evaluation = loss.evaluate(output, labels: batch.labels,
                                       globalValidPixels: workers > 1 ? Int(validPixels[0]) : nil)
        var total = [Double(evaluation.total)]
        communicator.allReduceSum(&total)
        let result = Result(loss: Float(total[0]), validPixels: Int(validPixels[0]))
        guard result.loss.isFinite else { return result }

        gradients.zeroTrainable()
        reducer?.begin()
        network.backward(dLogits: evaluation.logitsGradient, dAuxiliaryLogits: evaluation.auxiliaryLogitsGradient,
                         cache: cache!, parameters: parameters, gradients: &gradients, context: context)
        reducer?.finish(&gradients)
        optimizer.update(&parameters, gradients: gradients, learningRate: learningRate)
        if workers > 1 && !syncBatchNorm {
            let communicator = communicator
            context.averageBatchStatistics(reduce: { communicator.allReduceSum($0) }, workers: workers)
        }
        context.updateRunningStatistics(in: &parameters)
        return result
    }
}
