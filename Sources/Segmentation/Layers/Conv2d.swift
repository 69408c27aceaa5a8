/// A 2-D convolution layer: `weight[K, C, R, R]`, optional `bias[K]`.
///
/// Cache: the input (shared storage, never a copy).
public struct Conv2d: Sendable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let dilation: Int
    public let weight: ParameterID
    public let bias: ParameterID?

    /// Registers `NAME.weight` (Kaiming-normal: fan-out, or fan-in for a
    /// convolution with a bias — the classifiers) and, with `bias`, `NAME.bias` (zeros).
    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, bias: Bool = false, name: String, builder: inout ParameterBuilder
    ) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        let shape: Shape = [outputChannels, inputChannels, kernelSize, kernelSize]
        (weight, self.bias) = builder.scoped(name) { b in
            let w = b.add("weight", b.kaimingNormal(shape, fanIn: bias))
            return (w, bias ? b.add("bias", .zeros([outputChannels])) : nil)
        }
    }

    public func geometry(for input: Shape) -> ConvGeometry {
        precondition(input.rank == 4 && input.channels == inputChannels,
                     "Conv2d expected \(inputChannels) input channels, got \(input)")
        return ConvGeometry(batch: input.batch, inputChannels: inputChannels, outputChannels: outputChannels,
                            inputHeight: input.height, inputWidth: input.width, kernelSize: kernelSize,
                            stride: stride, padding: padding, dilation: dilation)
    }

    /// Multiply-adds of one forward on `input`.
    public func multiplyAdds(for input: Shape) -> Int { geometry(for: input).multiplyAdds }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> Tensor {
        context.convolutionMultiplyAdds += multiplyAdds(for: x.shape)
        return conv2d(x, weight: parameters[weight], bias: bias.map { parameters[$0] },
               geometry: geometry(for: x.shape), workspace: context.workspace, fastPaths: context.usesFastConvolutions)
    }

    /// The forward with an epilogue fused into the pass that writes the
    /// output: `max(conv·scale + shift + residual, 0)` (ReLU with `relu`),
    /// for a convolution without a bias. Inference folds batch norm, the
    /// residual add and the ReLU into it (`BatchNorm2d.inferenceAffine`).
    public func forward(
        _ x: Tensor, parameters: ParameterStore, context: ForwardContext,
        scale: Tensor?, shift: Tensor?, residual: Tensor? = nil, relu: Bool
    ) -> Tensor {
        precondition(bias == nil, "a fused epilogue is for convolutions without a bias")
        context.convolutionMultiplyAdds += multiplyAdds(for: x.shape)
        return conv2d(x, weight: parameters[weight], bias: shift, geometry: geometry(for: x.shape),
                      workspace: context.workspace, fastPaths: context.usesFastConvolutions,
                      scale: scale, residual: residual, relu: relu)
    }

    /// The fused forward on the concatenation of `parts` along channels,
    /// not built where the convolution can read the parts in place
    /// (`conv2d(concatenating:)`).
    public func forward(
        concatenating parts: [Tensor], parameters: ParameterStore, context: ForwardContext,
        scale: Tensor?, shift: Tensor?, relu: Bool
    ) -> Tensor {
        precondition(bias == nil, "a fused epilogue is for convolutions without a bias")
        let first = parts[0].shape
        let shape: Shape = [first.batch, parts.map(\.shape.channels).reduce(0, +), first.height, first.width]
        context.convolutionMultiplyAdds += multiplyAdds(for: shape)
        return conv2d(concatenating: parts, weight: parameters[weight], bias: shift, geometry: geometry(for: shape),
                      workspace: context.workspace, fastPaths: context.usesFastConvolutions, scale: scale, relu: relu)
    }

    /// The fused forward on the concatenation of `parts` and of `constant`
    /// ([N, C', 1, 1]) repeated over every pixel (`conv2d(concatenating:broadcasting:)`).
    public func forward(
        concatenating parts: [Tensor], broadcasting constant: Tensor, parameters: ParameterStore,
        context: ForwardContext, scale: Tensor?, shift: Tensor?, relu: Bool
    ) -> Tensor {
        precondition(bias == nil, "a fused epilogue is for convolutions without a bias")
        let first = parts[0].shape
        let shape: Shape = [first.batch, parts.map(\.shape.channels).reduce(0, +) + constant.shape.channels,
                            first.height, first.width]
        context.convolutionMultiplyAdds += multiplyAdds(for: shape)
        return conv2d(concatenating: parts, broadcasting: constant, weight: parameters[weight], bias: shift,
                      geometry: geometry(for: shape), workspace: context.workspace,
                      fastPaths: context.usesFastConvolutions, scale: scale, relu: relu)
    }

    /// The fused forward of a pointwise convolution whose output takes the
    /// place of `residual` (`conv2d(…, overwriting:)`): a ResNet block at
    /// inference writes its output over its input or its projection.
    public func forward(
        _ x: Tensor, parameters: ParameterStore, context: ForwardContext,
        scale: Tensor?, shift: Tensor?, overwriting residual: consuming Tensor, relu: Bool
    ) -> Tensor {
        precondition(bias == nil, "a fused epilogue is for convolutions without a bias")
        context.convolutionMultiplyAdds += multiplyAdds(for: x.shape)
        return conv2d(x, weight: parameters[weight], bias: shift, geometry: geometry(for: x.shape),
                      workspace: context.workspace, scale: scale, overwriting: residual, relu: relu)
    }

    /// Adds the weight (and bias) gradients into `gradients`; returns dx when `needsInputGradient`.
    public func backward(
        _ dy: Tensor, input x: Tensor, parameters: ParameterStore, gradients: inout ParameterStore,
        context: ForwardContext, needsInputGradient: Bool = true
    ) -> Tensor? {
        var dx: Tensor? = needsInputGradient ? .zeros(x.shape) : nil
        var dw: Tensor? = gradients.take(weight)
        var db: Tensor? = bias.map { gradients.take($0) }
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db, outputGradient: dy,
                       input: x, weight: parameters[weight], geometry: geometry(for: x.shape), workspace: context.workspace,
                       fastPaths: context.usesFastConvolutions,
                       weightGradientLow: gradients.lowParts?.pointer(weight),
                       biasGradientLow: bias.flatMap { gradients.lowParts?.pointer($0) })
        gradients.put(weight, dw!)
        if let bias { gradients.put(bias, db!) }
        return dx
    }
}
