/// GluonCV `_PSPHead`: pyramid pooling of c4 into 1, 2, 3 and 6 bins, each
/// 1×1 conv 2048→512 + BN + ReLU and resized back (bilinear, align_corners);
/// concat [c4, p1, p2, p3, p6] (4096 channels) → 3×3 conv → 512, BN, ReLU,
/// Dropout 0.1, 1×1 conv → classes.
/// Parameters `psp.conv{1…4}.0` / `.1`, `block.0`, `block.1`, `block.4`.
public struct PSPHead: Sendable {
    public static let bins = [1, 2, 3, 6]
    public let pyramid: [ConvBNReLU]
    public let unit: ConvBNReLU
    public let dropout = Dropout(probability: 0.1)
    public let classifier: Conv2d
    let upsample = Upsample()

    public struct Cache: Sendable {
        let input: Tensor
        let pyramid: [(pooledShape: Shape, unit: ConvBNReLU.Cache)]
        let unit: ConvBNReLU.Cache
        let dropoutSeed: UInt64?
        let classifierInput: Tensor
    }

    public init(inputChannels: Int, classCount: Int, name: String, builder: inout ParameterBuilder) {
        let branch = inputChannels / 4
        (pyramid, unit, classifier) = builder.scoped(name) { b in
            let pyramid = b.scoped("psp") { p in
                (1...Self.bins.count).map { index in
                    p.scoped("conv\(index)") { c in
                        ConvBNReLU(conv: Conv2d(inputChannels: inputChannels, outputChannels: branch, kernelSize: 1, name: "0", builder: &c),
                                   norm: BatchNorm2d(channels: branch, name: "1", builder: &c))
                    }
                }
            }
            let (unit, classifier) = b.scoped("block") { k in
                (ConvBNReLU(conv: Conv2d(inputChannels: inputChannels * 2, outputChannels: 512, kernelSize: 3, padding: 1,
                                         name: "0", builder: &k),
                            norm: BatchNorm2d(channels: 512, name: "1", builder: &k)),
                 Conv2d(inputChannels: 512, outputChannels: classCount, kernelSize: 1, bias: true, name: "4", builder: &k))
            }
            return (pyramid, unit, classifier)
        }
    }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        let (h, w) = (x.shape.height, x.shape.width)
        var parts = [x]
        var branchCaches: [(Shape, ConvBNReLU.Cache)] = []
        for (bins, branch) in zip(Self.bins, pyramid) {
            let pooled = adaptiveAveragePool(x, outputHeight: bins, outputWidth: bins)
            let (feature, cache) = branch.forward(pooled, parameters: parameters, context: context)
            parts.append(upsample.forward(feature, height: h, width: w))
            if let cache { branchCaches.append((pooled.shape, cache)) }
        }
        let (mixed, unitCache) = unit.forward(concatenating: parts, parameters: parameters, context: context)
        let (dropped, seed) = dropout.forward(mixed, context: context)
        let logits = classifier.forward(dropped, parameters: parameters, context: context)
        guard let unitCache else { return (logits, nil) }
        return (logits, Cache(input: x, pyramid: branchCaches, unit: unitCache, dropoutSeed: seed, classifierInput: dropped))
    }

    public func backward(
        _ dLogits: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore, context: ForwardContext
    ) -> Tensor {
        let dDropped = classifier.backward(dLogits, input: cache.classifierInput, parameters: parameters,
                                           gradients: &gradients, context: context)!
        let dMixed = dropout.backward(dDropped, seed: cache.dropoutSeed)
        let dConcat = unit.backward(dMixed, cache: cache.unit, parameters: parameters, gradients: &gradients, context: context)!
        let x = cache.input.shape
        let branchShape: Shape = [x.batch, pyramid[0].outputChannels, x.height, x.width]
        var dParts = [Tensor.zeros(x)] + pyramid.map { _ in Tensor.zeros(branchShape) }
        concatenateChannelsBackward(inputGradients: &dParts, outputGradient: dConcat)
        var dInput = dParts[0]
        for (index, branch) in pyramid.enumerated() {
            let (pooledShape, branchCache) = cache.pyramid[index]
            let featureShape: Shape = [x.batch, branch.outputChannels, pooledShape.height, pooledShape.width]
            let dFeature = upsample.backward(dParts[index + 1], inputShape: featureShape)
            let dPooled = branch.backward(dFeature, cache: branchCache, parameters: parameters, gradients: &gradients, context: context)!
            adaptiveAveragePoolBackward(inputGradient: &dInput, outputGradient: dPooled)
        }
        return dInput
    }
}
