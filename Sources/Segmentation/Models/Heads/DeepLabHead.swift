/// DeepLabV3 head (GluonCV `_DeepLabHead`, torchvision `DeepLabHead`):
/// ASPP on c4 — 1×1 conv → 256; three 3×3 atrous convs (rates 12, 24, 36) →
/// 256; image pooling (global average → 1×1 conv → 256 → resized back); each
/// with BN + ReLU — concatenated (1280) → 1×1 conv → 256, BN, ReLU, Dropout 0.5;
/// then 3×3 conv 256→256, BN, ReLU, Dropout 0.1, 1×1 conv → classes.
///
/// Parameters `aspp.convs.{0,1,2,3}.0` / `.1` (conv / BN), `aspp.convs.4.1` /
/// `.2` (pooling branch conv / BN), `aspp.project.0` / `.1`, `block.0`,
/// `block.1`, `block.4`.
public struct DeepLabHead: Sendable {
    public static let atrousRates = [12, 24, 36]
    /// Channels of each ASPP branch, the projection and the 3×3 unit (256 in
    /// DeepLabV3; smaller in tests).
    public let width: Int
    public let branches: [ConvBNReLU]
    public let pooling: ConvBNReLU
    public let projection: ConvBNReLU
    public let projectionDropout = Dropout(probability: 0.5)
    public let unit: ConvBNReLU
    public let dropout = Dropout(probability: 0.1)
    public let classifier: Conv2d
    let upsample = Upsample()

    public struct Cache: Sendable {
        let input: Tensor
        let branches: [ConvBNReLU.Cache]
        let pooling: ConvBNReLU.Cache
        let projection: ConvBNReLU.Cache
        let projectionDropoutSeed: UInt64?
        let unit: ConvBNReLU.Cache
        let dropoutSeed: UInt64?
        let classifierInput: Tensor
    }

    public init(inputChannels: Int, classCount: Int, width: Int = 256, name: String, builder: inout ParameterBuilder) {
        self.width = width
        (branches, pooling, projection, unit, classifier) = builder.scoped(name) { b in
            let (branches, pooling, projection) = b.scoped("aspp") { a in
                let (branches, pooling) = a.scoped("convs") { c in
                    var branches: [ConvBNReLU] = [c.scoped("0") { s in
                        ConvBNReLU(conv: Conv2d(inputChannels: inputChannels, outputChannels: width, kernelSize: 1, name: "0", builder: &s),
                                   norm: BatchNorm2d(channels: width, name: "1", builder: &s))
                    }]
                    for (index, rate) in Self.atrousRates.enumerated() {
                        branches.append(c.scoped("\(index + 1)") { s in
                            ConvBNReLU(conv: Conv2d(inputChannels: inputChannels, outputChannels: width, kernelSize: 3,
                                                    padding: rate, dilation: rate, name: "0", builder: &s),
                                       norm: BatchNorm2d(channels: width, name: "1", builder: &s))
                        })
                    }
                    let pooling = c.scoped("4") { s in
                        ConvBNReLU(conv: Conv2d(inputChannels: inputChannels, outputChannels: width, kernelSize: 1, name: "1", builder: &s),
                                   norm: BatchNorm2d(channels: width, name: "2", builder: &s))
                    }
                    return (branches, pooling)
                }
                let projection = a.scoped("project") { p in
                    ConvBNReLU(conv: Conv2d(inputChannels: width * 5, outputChannels: width, kernelSize: 1, name: "0", builder: &p),
                               norm: BatchNorm2d(channels: width, name: "1", builder: &p))
                }
                return (branches, pooling, projection)
            }
            let (unit, classifier) = b.scoped("block") { k in
                (ConvBNReLU(conv: Conv2d(inputChannels: width, outputChannels: width, kernelSize: 3, padding: 1, name: "0", builder: &k),
                            norm: BatchNorm2d(channels: width, name: "1", builder: &k)),
                 Conv2d(inputChannels: width, outputChannels: classCount, kernelSize: 1, bias: true, name: "4", builder: &k))
            }
            return (branches, pooling, projection, unit, classifier)
        }
    }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        var parts: [Tensor] = []
        var branchCaches: [ConvBNReLU.Cache] = []
        for branch in branches {
            let (y, cache) = branch.forward(x, parameters: parameters, context: context)
            parts.append(y)
            if let cache { branchCaches.append(cache) }
        }
        let pooled = adaptiveAveragePool(x, outputHeight: 1, outputWidth: 1)
        let (pooledFeature, poolingCache) = pooling.forward(pooled, parameters: parameters, context: context)
        // The pooled feature resized to the map is the same at every pixel:
        // at inference the projection adds its share once per channel and
        // reads the branches where they are, with no concatenation.
        let (projected, projectionCache) = projection.forward(concatenating: parts, broadcasting: pooledFeature,
                                                              parameters: parameters, context: context)
        let (projectedDropped, projectionSeed) = projectionDropout.forward(projected, context: context)
        let (mixed, unitCache) = unit.forward(projectedDropped, parameters: parameters, context: context)
        let (dropped, seed) = dropout.forward(mixed, context: context)
        let logits = classifier.forward(dropped, parameters: parameters, context: context)
        guard let poolingCache, let projectionCache, let unitCache else { return (logits, nil) }
        return (logits, Cache(input: x, branches: branchCaches, pooling: poolingCache, projection: projectionCache,
                              projectionDropoutSeed: projectionSeed, unit: unitCache, dropoutSeed: seed,
                              classifierInput: dropped))
    }

    public func backward(
        _ dLogits: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore, context: ForwardContext
    ) -> Tensor {
        let dDropped = classifier.backward(dLogits, input: cache.classifierInput, parameters: parameters,
                                           gradients: &gradients, context: context)!
        let dMixed = dropout.backward(dDropped, seed: cache.dropoutSeed)
        let dProjectedDropped = unit.backward(dMixed, cache: cache.unit, parameters: parameters, gradients: &gradients, context: context)!
        let dProjected = projectionDropout.backward(dProjectedDropped, seed: cache.projectionDropoutSeed)
        let dConcat = projection.backward(dProjected, cache: cache.projection, parameters: parameters,
                                          gradients: &gradients, context: context)!
        let x = cache.input.shape
        let partShape: Shape = [x.batch, width, x.height, x.width]
        var dParts = (0...branches.count).map { _ in Tensor.zeros(partShape) }
        concatenateChannelsBackward(inputGradients: &dParts, outputGradient: dConcat)
        var dInput = Tensor.zeros(x)
        for (index, branch) in branches.enumerated() {
            let d = branch.backward(dParts[index], cache: cache.branches[index], parameters: parameters,
                                    gradients: &gradients, context: context)!
            accumulate(&dInput, d)
        }
        let dPooledFeature = upsample.backward(dParts[branches.count], inputShape: [x.batch, width, 1, 1])
        let dPooled = pooling.backward(dPooledFeature, cache: cache.pooling, parameters: parameters,
                                       gradients: &gradients, context: context)!
        adaptiveAveragePoolBackward(inputGradient: &dInput, outputGradient: dPooled)
        return dInput
    }
}
