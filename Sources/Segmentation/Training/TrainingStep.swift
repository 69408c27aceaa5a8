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
/// worker computes with the whole batch: the gradients bit for bit (each is
/// an exact sum over the images, rounded once; `GradientLowParts`), the BN
/// statistics up to the order of Double sums.
///
/// In one process with sgd or adam, each gradient is folded into the
/// optimizer's state as soon as the backward finishes it and then freed
/// (`Optimizer.absorb`), and the weights move after the backward: the same
/// bits as `Optimizer.update`, without a gradient store the size of the
/// weights. Data-parallel steps keep the gradients, which they sum over the
/// workers before the update.
public final class TrainingStep {
    public let network: SegmentationNetwork
    public let loss: SegmentationLoss
    public let communicator: any Communicator
    public let syncBatchNorm: Bool
    public let workspace: Workspace
    /// Whether a single-process step with sgd or adam folds each gradient
    /// into the optimizer state as the backward finishes it (see above).
    public let absorbsGradients: Bool
    private var gradients: ParameterStore
    private let reducer: GradientReducer?

    /// Seconds the last step waited for the gradient sums after its backward.
    public var lastCommunicationWaitSeconds: Double { reducer?.lastWaitSeconds ?? 0 }

    /// Multiply-adds of the last step's forward convolutions (for GFLOP/s reports).
    public private(set) var lastConvolutionMultiplyAdds = 0
    /// Whether the step's convolutions may use Winograd and padding-tap
    /// skipping (default: `FastConvolutions.isEnabled(for: .training)`).
    public var usesFastConvolutions = FastConvolutions.isEnabled(for: .training)

    public struct Result: Sendable {
        /// The global batch's loss (main + aux weight · aux), the same on every worker.
        public var loss: Float
        /// Non-ignored pixels of the global batch.
        public var validPixels: Int
    }

    public init(network: SegmentationNetwork, parameters: ParameterStore, loss: SegmentationLoss,
                communicator: any Communicator = SingleProcessCommunicator(), syncBatchNorm: Bool = false,
                workspace: Workspace = .training(), absorbsGradients: Bool = true) {
        self.network = network
        self.loss = loss
        self.communicator = communicator
        self.syncBatchNorm = syncBatchNorm
        self.workspace = workspace
        self.absorbsGradients = absorbsGradients && communicator.size == 1
        gradients = self.absorbsGradients ? parameters.releasedLikeTrainable() : parameters.zerosLikeTrainable()
        if communicator.size > 1 {
            let reducer = GradientReducer(parameters: parameters, communicator: communicator)
            gradients.gradientObserver = reducer
            gradients.lowParts = reducer.lowParts
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
        context.usesFastConvolutions = usesFastConvolutions
        context.firstSample = firstSample
        if syncBatchNorm && workers > 1 {
            let communicator = communicator
            context.batchNormReduction = { communicator.allReduceSum($0) }
        }
        let (output, cache) = network.forward(batch.images, parameters: parameters, context: context)
        lastConvolutionMultiplyAdds = context.convolutionMultiplyAdds
        let evaluation = loss.evaluate(consume output, labels: batch.labels,
                                       globalValidPixels: workers > 1 ? Int(validPixels[0]) : nil)
        var total = [Double(evaluation.total)]
        communicator.allReduceSum(&total)
        let result = Result(loss: Float(total[0]), validPixels: Int(validPixels[0]))
        guard result.loss.isFinite else { return result }
        // The logits are gone; the backward consumes their gradients.
        let (dLogits, dAuxiliaryLogits) = (evaluation.logitsGradient, evaluation.auxiliaryLogitsGradient)
        _ = consume evaluation

        if absorbsGradients && optimizer.absorbsGradients {
            gradients.releaseTrainable()
            let absorber = GradientAbsorber(optimizer: optimizer.take(), parameters: parameters, learningRate: learningRate)
            gradients.gradientObserver = absorber
            network.backward(dLogits: consume dLogits, dAuxiliaryLogits: consume dAuxiliaryLogits,
                             cache: cache!, parameters: parameters, gradients: &gradients, context: context)
            gradients.gradientObserver = nil
            optimizer = absorber.finish()
            optimizer.applyAbsorbed(to: &parameters, learningRate: learningRate)
        } else {
            gradients.zeroTrainable()
            reducer?.begin()
            network.backward(dLogits: consume dLogits, dAuxiliaryLogits: consume dAuxiliaryLogits,
                             cache: cache!, parameters: parameters, gradients: &gradients, context: context)
            reducer?.finish(&gradients)
            optimizer.update(&parameters, gradients: gradients, learningRate: learningRate)
        }
        if workers > 1 && !syncBatchNorm {
            let communicator = communicator
            context.averageBatchStatistics(reduce: { communicator.allReduceSum($0) }, workers: workers)
        }
        context.updateRunningStatistics(in: &parameters)
        return result
    }
}

/// The observer of a single-process step's gradient store: folds each
/// gradient into the optimizer's state as the backward puts it back, and has
/// the store free it.
///
/// `@unchecked Sendable`: a backward puts its gradients back from the one
/// thread that runs it, and `finish` runs on that thread after it.
private final class GradientAbsorber: GradientObserver, @unchecked Sendable {
    private var optimizer: Optimizer
    private var parameters: ParameterStore
    private let learningRate: Double
    private var absorbed: [Bool]

    init(optimizer: Optimizer, parameters: ParameterStore, learningRate: Double) {
        self.optimizer = optimizer
        self.parameters = parameters
        self.learningRate = learningRate
        absorbed = Array(repeating: false, count: parameters.count)
    }

    func gradientIsFinal(_ id: ParameterID, _ gradient: Tensor) -> GradientDisposition {
        guard parameters.role(of: id) == .trainable else { return .keep }
        precondition(!absorbed[id.index], "the gradient of \(parameters.name(of: id)) was put twice in one backward")
        absorbed[id.index] = true
        optimizer.absorb(id, gradient: gradient, parameters: parameters, learningRate: learningRate)
        return .release
    }

    /// Absorbs a zero gradient for every trainable tensor the backward did
    /// not reach (as `update` would see its zero gradient), lets go of the
    /// parameters, and hands the optimizer back.
    func finish() -> Optimizer {
        for id in parameters.ids where parameters.role(of: id) == .trainable && !absorbed[id.index] {
            optimizer.absorb(id, gradient: .zeros(parameters[id].shape), parameters: parameters, learningRate: learningRate)
        }
        parameters = ParameterStore()
        return optimizer.take()
    }
}
