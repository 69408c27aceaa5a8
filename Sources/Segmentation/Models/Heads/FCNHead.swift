/// GluonCV `_FCNHead` / torchvision `FCNHead`: 3×3 conv in → in/4, BN, ReLU,
/// Dropout 0.1, 1×1 conv → classes (with bias). Also the aux head (on c3).
/// Parameters `block.0` (conv), `block.1` (BN), `block.4` (classifier).
public struct FCNHead: Sendable {
    public let unit: ConvBNReLU
    public let dropout = Dropout(probability: 0.1)
    public let classifier: Conv2d

    public struct Cache: Sendable {
        let unit: ConvBNReLU.Cache
        let dropoutSeed: UInt64?
        let classifierInput: Tensor
    }

    public init(inputChannels: Int, classCount: Int, name: String, builder: inout ParameterBuilder) {
        let inner = inputChannels / 4
        (unit, classifier) = builder.scoped(name) { b in
            b.scoped("block") { k in
                (ConvBNReLU(conv: Conv2d(inputChannels: inputChannels, outputChannels: inner, kernelSize: 3, padding: 1,
                                         name: "0", builder: &k),
                            norm: BatchNorm2d(channels: inner, name: "1", builder: &k)),
                 Conv2d(inputChannels: inner, outputChannels: classCount, kernelSize: 1, bias: true, name: "4", builder: &k))
            }
        }
    }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        let (h, unitCache) = unit.forward(x, parameters: parameters, context: context)
        let (dropped, seed) = dropout.forward(h, context: context)
        let logits = classifier.forward(dropped, parameters: parameters, context: context)
        guard let unitCache else { return (logits, nil) }
        return (logits, Cache(unit: unitCache, dropoutSeed: seed, classifierInput: dropped))
    }

    public func backward(
        _ dLogits: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore, context: ForwardContext
    ) -> Tensor {
        let dDropped = classifier.backward(dLogits, input: cache.classifierInput, parameters: parameters,
                                           gradients: &gradients, context: context)!
        let dH = dropout.backward(dDropped, seed: cache.dropoutSeed)
        return unit.backward(dH, cache: cache.unit, parameters: parameters, gradients: &gradients, context: context)!
    }
}
