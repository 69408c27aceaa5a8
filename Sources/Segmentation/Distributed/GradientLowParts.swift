/// A data-parallel rank's gradients beyond float precision: for each
/// trainable tensor, the part of this rank's exact sum over its images that
/// rounding the gradient to float dropped (ExactSum.swift).
///
/// One worker rounds each gradient's sum over the global batch once. N
/// workers must not round N partial sums and then their total: that is what
/// would make N workers differ from one. So each rank's layers add what
/// their rounding dropped here (convolution weights and biases, BN γ and
/// β), the `GradientReducer` sums gradient + low part in Double over the
/// ranks, and rounds once: N workers then get one worker's gradients bit for
/// bit (tested), whatever convolution algorithm runs.
///
/// `@unchecked Sendable`: a tensor's low part is written by the one backward
/// thread that computes its gradient, before the gradient is put back, and
/// read and cleared by the reducer in `gradientIsFinal` on that thread.
public final class GradientLowParts: @unchecked Sendable {
    private let buffers: [UnsafeMutableBufferPointer<Float>?]

    /// Zeroed low parts for the trainable tensors of `parameters`.
    public init(parameters: ParameterStore) {
        buffers = parameters.ids.map { id in
            guard parameters.role(of: id) == .trainable else { return nil }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: parameters[id].elementCount)
            buffer.initialize(repeating: 0)
            return buffer
        }
    }

    deinit { buffers.forEach { $0?.deallocate() } }

    /// The low part of tensor `id`'s gradient (nil for a buffer), which a
    /// backward adds into.
    func pointer(_ id: ParameterID) -> UnsafeMutablePointer<Float>? { buffers[id.index]?.baseAddress }

    /// Hands tensor `id`'s low part to `body`, then zeroes it for the next step.
    func consume(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) -> Void) {
        guard let buffer = buffers[id.index] else { return }
        body(UnsafeBufferPointer(buffer))
        buffer.update(repeating: 0)
    }
}
