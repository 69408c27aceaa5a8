/// ResNet's bottleneck block (expansion 4), stride on the 3×3 convolution
/// (torchvision V1.5, GluonCV V1b):
///
///     x → conv1 1×1 → bn1 → relu → conv2 3×3 (stride, dilation) → bn2 → relu
///       → conv3 1×1 → bn3 → (+ downsample(x) or x) → relu
///
/// Parameters: `conv1`, `bn1`, `conv2`, `bn2`, `conv3`, `bn3`, and
/// `downsample.0` (1×1 conv with the block's stride) + `downsample.1` (BN)
/// when the block changes shape.
public struct Bottleneck: Sendable {
    public static let expansion = 4

    public let unit1: ConvBNReLU
    public let unit2: ConvBNReLU
    public let conv3: Conv2d
    public let bn3: BatchNorm2d
    public let downsample: (conv: Conv2d, norm: BatchNorm2d)?
    let relu = ReLU()

    /// What the backward needs. The outputs of the first two BN + ReLU
    /// (conv2's and conv3's inputs, a sixth of a block's activations) are
    /// not kept: the backward recomputes each from its BN's input and batch
    /// statistics with the forward's bits, one elementwise pass each.
    public struct Cache: Sendable {
        let input: Tensor
        let norm1: BatchNorm2d.Cache
        let norm2: BatchNorm2d.Cache
        let bn3: BatchNorm2d.Cache
        let downsample: BatchNorm2d.Cache?
        let output: Tensor
    }

    public init(
        inputChannels: Int, planes: Int, stride: Int, dilation: Int, name: String, builder: inout ParameterBuilder
    ) {
        let outputChannels = planes * Self.expansion
        (unit1, unit2, conv3, bn3, downsample) = builder.scoped(name) { b in
            let unit1 = ConvBNReLU(
                conv: Conv2d(inputChannels: inputChannels, outputChannels: planes, kernelSize: 1, name: "conv1", builder: &b),
                norm: BatchNorm2d(channels: planes, name: "bn1", builder: &b))
            let unit2 = ConvBNReLU(
                conv: Conv2d(inputChannels: planes, outputChannels: planes, kernelSize: 3, stride: stride,
                             padding: dilation, dilation: dilation, name: "conv2", builder: &b),
                norm: BatchNorm2d(channels: planes, name: "bn2", builder: &b))
            let conv3 = Conv2d(inputChannels: planes, outputChannels: outputChannels, kernelSize: 1, name: "conv3", builder: &b)
            let bn3 = BatchNorm2d(channels: outputChannels, name: "bn3", builder: &b)
            var downsample: (Conv2d, BatchNorm2d)?
            if stride != 1 || inputChannels != outputChannels {
                downsample = b.scoped("downsample") { d in
                    (Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1, stride: stride,
                            name: "0", builder: &d),
                     BatchNorm2d(channels: outputChannels, name: "1", builder: &d))
                }
            }
            return (unit1, unit2, conv3, bn3, downsample)
        }
    }

    public var outputChannels: Int { conv3.outputChannels }
    public var stride: Int { unit2.conv.stride }
    public var dilation: Int { unit2.conv.dilation }

    /// `x` is consumed: at inference, when the caller passed its only
    /// reference, the block's output takes its place.
    public func forward(_ x: consuming Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        if context.mode == .inference { return (inferenceForward(x, parameters: parameters, context: context), nil) }
        let (out1, cache1) = unit1.forward(x, parameters: parameters, context: context)
        let (out2, cache2) = unit2.forward(out1, parameters: parameters, context: context)
        let convolved = conv3.forward(out2, parameters: parameters, context: context)
        let (normalized, cache3) = bn3.forward(convolved, parameters: parameters, context: context)
        var identity = copy x
        var downsampleCache: BatchNorm2d.Cache?
        if let downsample {
            let projected = downsample.conv.forward(x, parameters: parameters, context: context)
            (identity, downsampleCache) = downsample.norm.forward(projected, parameters: parameters, context: context)
        }
        let y = relu.forward(add(normalized, identity), context: context)
        guard let cache1, let cache2, let cache3 else { return (y, nil) }
        return (y, Cache(input: x, norm1: cache1.norm.withoutReLUOutput(), norm2: cache2.norm.withoutReLUOutput(),
                         bn3: cache3, downsample: downsampleCache, output: y))
    }

    /// Inference: each batch norm, the residual add and the ReLUs run in the
    /// output pass of the convolution before them (`ConvolutionEpilogue`),
    /// with the same arithmetic in the same order as the layers one by one.
    /// The output is written over the identity (x, or its projection), so a
    /// block holds at most its input, its projection and two narrow maps.
    private func inferenceForward(_ x: consuming Tensor, parameters: ParameterStore, context: ForwardContext) -> Tensor {
        let out1 = unit1.forward(x, parameters: parameters, context: context).0
        let identity: Tensor
        if let downsample {
            let affine = downsample.norm.inferenceAffine(parameters)
            identity = downsample.conv.forward(x, parameters: parameters, context: context,
                                               scale: affine.scale, shift: affine.shift, relu: false)
            _ = consume x
        } else {
            identity = x
        }
        let out2 = unit2.forward(consume out1, parameters: parameters, context: context).0
        let affine = bn3.inferenceAffine(parameters)
        return conv3.forward(out2, parameters: parameters, context: context, scale: affine.scale, shift: affine.shift,
                             overwriting: consume identity, relu: true)
    }

    /// The forward read backwards; the residual's gradient is added once, at
    /// the end. Each recomputed ReLU output lives only while its two readers
    /// (the next convolution's weight gradient, its own BN's mask) run.
    public func backward(
        _ dOut: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore, context: ForwardContext
    ) -> Tensor {
        let dSum = relu.backward(dOut, output: cache.output)
        let dConvolved = bn3.backward(dSum, cache: cache.bn3, parameters: parameters, gradients: &gradients)
        let dConvolved2: Tensor
        do {
            let out2 = unit2.norm.recomputedReLUOutput(cache.norm2, parameters: parameters)
            let dOut2 = conv3.backward(dConvolved, input: out2, parameters: parameters, gradients: &gradients, context: context)!
            dConvolved2 = unit2.norm.backward(dOut2, cache: cache.norm2.with(reluOutput: out2), parameters: parameters,
                                              gradients: &gradients)
        }
        let dConvolved1: Tensor
        do {
            let out1 = unit1.norm.recomputedReLUOutput(cache.norm1, parameters: parameters)
            let dOut1 = unit2.conv.backward(dConvolved2, input: out1, parameters: parameters, gradients: &gradients,
                                            context: context)!
            dConvolved1 = unit1.norm.backward(dOut1, cache: cache.norm1.with(reluOutput: out1), parameters: parameters,
                                              gradients: &gradients)
        }
        var dInput = unit1.conv.backward(dConvolved1, input: cache.input, parameters: parameters, gradients: &gradients,
                                         context: context)!
        if let downsample, let downsampleCache = cache.downsample {
            let dProjected = downsample.norm.backward(dSum, cache: downsampleCache, parameters: parameters, gradients: &gradients)
            let dIdentity = downsample.conv.backward(dProjected, input: cache.input, parameters: parameters,
                                                     gradients: &gradients, context: context)!
            accumulate(&dInput, dIdentity)
        } else {
            accumulate(&dInput, dSum)
        }
        return dInput
    }
}
