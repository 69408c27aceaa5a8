/// The training objective (SPEC §5): softmax cross-entropy of the main logits
/// plus `auxiliaryWeight` × that of the aux logits, each averaged over the
/// batch's non-ignored pixels (label 255 is ignored).
///
/// The gradient is the gradient of this total, so the aux head's gradient is
/// scaled by `auxiliaryWeight` (MXNet's `SoftmaxOutput` would weight it 1.0;
/// see Docs/differences.md).
public struct SegmentationLoss: Sendable {
    /// `_aux_weight` (SageMaker's hidden default 0.5).
    public var auxiliaryWeight: Float

    public init(auxiliaryWeight: Float = Float(TrainingConfiguration.defaults.auxiliaryWeight)) {
        self.auxiliaryWeight = auxiliaryWeight
    }

    public struct Evaluation: Sendable {
        public var total: Float
        public var main: Float
        public var auxiliary: Float?
        /// Pixels that were not ignored.
        public var validPixels: Int
        public var logitsGradient: Tensor
        public var auxiliaryLogitsGradient: Tensor?
    }

    /// Loss and logit gradients for one batch; `labels` are [N, H, W] class ids, row-major.
    ///
    /// `globalValidPixels`: in data-parallel training, the non-ignored pixels
    /// of the whole global batch (SPEC §10). Means are taken over that count,
    /// so the workers' losses and gradients add up to the global batch's.
    public func evaluate(_ output: SegmentationOutput, labels: [UInt8], globalValidPixels: Int? = nil) -> Evaluation {
        var dLogits = Tensor.zeros(output.logits.shape)
        let (main, valid) = softmaxCrossEntropyBackward(logitsGradient: &dLogits, logits: output.logits, labels: labels,
                                                        normalizer: globalValidPixels)
        var auxiliary: Float?
        var dAux: Tensor?
        if let auxLogits = output.auxiliaryLogits {
            var gradient = Tensor.zeros(auxLogits.shape)
            auxiliary = softmaxCrossEntropyBackward(
                logitsGradient: &gradient, logits: auxLogits, labels: labels, weight: auxiliaryWeight,
                normalizer: globalValidPixels).loss
            dAux = gradient
        }
        return Evaluation(total: main + auxiliaryWeight * (auxiliary ?? 0), main: main, auxiliary: auxiliary,
                          validPixels: valid, logitsGradient: dLogits, auxiliaryLogitsGradient: dAux)
    }
}
