/// convolution → batch norm → ReLU, the unit of stems and heads (BN and ReLU
/// fused into one pass each way).
/// Parameters: `NAME.<conv>.weight` and `NAME.<bn>.*` with the given child names
/// (e.g. "0" and "1" inside a sequential block).
public struct ConvBNReLU: Sendable {
    public let conv: Conv2d
    public let norm: BatchNorm2d

    public struct Cache: Sendable {
        let input: Tensor
        let norm: BatchNorm2d.Cache
    }

    public init(conv: Conv2d, norm: BatchNorm2d) {
        precondition(conv.outputChannels == norm.channels)
        self.conv = conv
        self.norm = norm
    }

    public var outputChannels: Int { conv.outputChannels }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        if context.mode == .inference {
            // BN (running statistics) and ReLU in the convolution's output pass.
            let affine = norm.inferenceAffine(parameters)
            return (conv.forward(x, parameters: parameters, context: context, scale: affine.scale, shift: affine.shift,
                                 relu: true), nil)
        }
        let convolved = conv.forward(x, parameters: parameters, context: context)
        let (y, normCache) = norm.forward(convolved, parameters: parameters, context: context, relu: true)
        guard let normCache else { return (y, nil) }
        return (y, Cache(input: x, norm: normCache))
    }

    /// The forward on the concatenation of `parts` along channels; at
    /// inference it is not built where the convolution reads the parts in
    /// place (`Conv2d.forward(concatenating:)`).
    public func forward(concatenating parts: [Tensor], parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        guard context.mode == .inference else {
            return forward(concatenateChannels(parts), parameters: parameters, context: context)
        }
        let affine = norm.inferenceAffine(parameters)
        return (conv.forward(concatenating: parts, parameters: parameters, context: context, scale: affine.scale,
                             shift: affine.shift, relu: true), nil)
    }

    /// The forward on the concatenation of `parts` and of `constant`
    /// ([N, C', 1, 1]) resized to their size, which repeats it; at inference
    /// a pointwise convolution builds neither
    /// (`Conv2d.forward(concatenating:broadcasting:)`).
    public func forward(
        concatenating parts: [Tensor], broadcasting constant: Tensor, parameters: ParameterStore, context: ForwardContext
    ) -> (Tensor, Cache?) {
        guard context.mode == .inference else {
            let repeated = Upsample().forward(constant, height: parts[0].shape.height, width: parts[0].shape.width)
            return forward(concatenateChannels(parts + [repeated]), parameters: parameters, context: context)
        }
        let affine = norm.inferenceAffine(parameters)
        return (conv.forward(concatenating: parts, broadcasting: constant, parameters: parameters, context: context,
                             scale: affine.scale, shift: affine.shift, relu: true), nil)
    }

    public func backward(
        _ dy: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore,
        context: ForwardContext, needsInputGradient: Bool = true
    ) -> Tensor? {
        let dConvolved = norm.backward(dy, cache: cache.norm, parameters: parameters, gradients: &gradients)
        return conv.backward(dConvolved, input: cache.input, parameters: parameters, gradients: &gradients,
                             context: context, needsInputGradient: needsInputGradient)
    }

    public func multiplyAdds(for input: Shape) -> Int { conv.multiplyAdds(for: input) }
}
