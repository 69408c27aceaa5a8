/// Depth of a ResNet: the number of bottleneck blocks per stage.
public enum ResNetDepth: String, Sendable, Codable, CaseIterable {
    case resnet50 = "resnet-50"
    case resnet101 = "resnet-101"

    public var blockCounts: [Int] {
        switch self {
        case .resnet50: return [3, 4, 6, 3]
        case .resnet101: return [3, 4, 23, 3]
        }
    }
}

/// The stem in front of layer1 (SPEC §4).
public enum ResNetStem: String, Sendable, Codable, CaseIterable {
    /// GluonCV `resnet*_v1s`, the default: three 3×3 convolutions
    /// (3→64 stride 2, 64→64, 64→128) with BN and ReLU, then max pool; layer1 sees 128 channels.
    /// Parameters `conv1.0`, `conv1.1`, `conv1.3`, `conv1.4`, `conv1.6`, `bn1`.
    case deep
    /// torchvision: one 7×7 stride-2 convolution 3→64, BN, ReLU, max pool; layer1 sees 64 channels.
    /// Parameters `conv1`, `bn1`.
    case standard
}

/// The two feature maps the heads read.
public struct BackboneFeatures: Sendable {
    /// layer3's output, 1024 channels at ⌈H/8⌉ × ⌈W/8⌉ (the aux head's
    /// input); nil when the forward was asked not to keep it.
    public var c3: Tensor?
    /// layer4's output, 2048 channels at the same size (the main head's input).
    public var c4: Tensor
}

/// A ResNet-50/101 dilated to output stride 8 (SPEC §4): layer3 and layer4
/// keep stride 1; layer3's blocks use dilations [1, 2, 2, …] and layer4's
/// [2, 4, 4], with padding equal to dilation.
public struct ResNet: Sendable {
    public let depth: ResNetDepth
    public let stem: ResNetStem
    public let stemUnits: [ConvBNReLU]
    public let maxPool = MaxPool2d(.resnetStem)
    public let layers: [[Bottleneck]]

    public struct Cache: Sendable {
        let stem: [ConvBNReLU.Cache]
        let poolIndices: MaxPoolIndices
        let blocks: [[Bottleneck.Cache]]
    }

    public init(depth: ResNetDepth, stem: ResNetStem, name: String = "backbone", builder: inout ParameterBuilder) {
        self.depth = depth
        self.stem = stem
        (stemUnits, layers) = builder.scoped(name) { b in
            var units: [ConvBNReLU] = []
            switch stem {
            case .deep:
                b.scoped("conv1") { c in
                    units.append(ConvBNReLU(
                        conv: Conv2d(inputChannels: 3, outputChannels: 64, kernelSize: 3, stride: 2, padding: 1, name: "0", builder: &c),
                        norm: BatchNorm2d(channels: 64, name: "1", builder: &c)))
                    units.append(ConvBNReLU(
                        conv: Conv2d(inputChannels: 64, outputChannels: 64, kernelSize: 3, padding: 1, name: "3", builder: &c),
                        norm: BatchNorm2d(channels: 64, name: "4", builder: &c)))
                }
                let conv = b.scoped("conv1") { c in
                    Conv2d(inputChannels: 64, outputChannels: 128, kernelSize: 3, padding: 1, name: "6", builder: &c)
                }
                units.append(ConvBNReLU(conv: conv, norm: BatchNorm2d(channels: 128, name: "bn1", builder: &b)))
            case .standard:
                units.append(ConvBNReLU(
                    conv: Conv2d(inputChannels: 3, outputChannels: 64, kernelSize: 7, stride: 2, padding: 3, name: "conv1", builder: &b),
                    norm: BatchNorm2d(channels: 64, name: "bn1", builder: &b)))
            }
            var inputChannels = units.last!.outputChannels
            var layers: [[Bottleneck]] = []
            // (planes, stride, dilation of the first block, dilation of the rest)
            let stages = [(64, 1, 1, 1), (128, 2, 1, 1), (256, 1, 1, 2), (512, 1, 2, 4)]
            for (stage, (planes, stride, firstDilation, dilation)) in stages.enumerated() {
                var blocks: [Bottleneck] = []
                b.scoped("layer\(stage + 1)") { l in
                    for index in 0..<depth.blockCounts[stage] {
                        let block = Bottleneck(
                            inputChannels: inputChannels, planes: planes, stride: index == 0 ? stride : 1,
                            dilation: index == 0 ? firstDilation : dilation, name: "\(index)", builder: &l)
                        blocks.append(block)
                        inputChannels = block.outputChannels
                    }
                }
                layers.append(blocks)
            }
            return (units, layers)
        }
    }

    /// With `keepingC3` false, layer3's output is freed once layer4 has read
    /// it (an inference without the aux head: at 1024², 64 MiB less through
    /// layer4 and the head).
    public func forward(
        _ x: Tensor, parameters: ParameterStore, context: ForwardContext, keepingC3: Bool = true
    ) -> (BackboneFeatures, Cache?) {
        precondition(x.shape.rank == 4 && x.shape.channels == 3, "ResNet expects [N, 3, H, W] images, got \(x.shape)")
        var h = x
        var stemCaches: [ConvBNReLU.Cache] = []
        for unit in stemUnits {
            let (y, cache) = unit.forward(h, parameters: parameters, context: context)
            h = y
            if let cache { stemCaches.append(cache) }
        }
        let (pooled, indices) = maxPool.forward(h, context: context)
        h = pooled
        var blockCaches: [[Bottleneck.Cache]] = []
        var c3: Tensor?
        for (stage, blocks) in layers.enumerated() {
            var caches: [Bottleneck.Cache] = []
            for block in blocks {
                // The block takes the only reference to its input, so at
                // inference it can write its output over it.
                let (y, cache) = block.forward(consume h, parameters: parameters, context: context)
                h = y
                if let cache { caches.append(cache) }
            }
            blockCaches.append(caches)
            if stage == 2 && keepingC3 { c3 = h }
        }
        let features = BackboneFeatures(c3: c3, c4: h)
        guard context.mode == .training, let indices else { return (features, nil) }
        return (features, Cache(stem: stemCaches, poolIndices: indices, blocks: blockCaches))
    }

    /// Backward from the gradients of c3 (nil without an aux head) and c4.
    /// The image gradient is not computed.
    public func backward(
        dC3: Tensor?, dC4: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore,
        context: ForwardContext
    ) {
        var dH = dC4
        for stage in layers.indices.reversed() {
            if stage == 2, let dC3 { accumulate(&dH, dC3) }
            for (block, blockCache) in zip(layers[stage], cache.blocks[stage]).reversed() {
                dH = block.backward(dH, cache: blockCache, parameters: parameters, gradients: &gradients, context: context)
            }
        }
        dH = maxPool.backward(dH, indices: cache.poolIndices)
        for (index, (unit, unitCache)) in zip(stemUnits, cache.stem).enumerated().reversed() {
            let dInput = unit.backward(dH, cache: unitCache, parameters: parameters, gradients: &gradients,
                                       context: context, needsInputGradient: index > 0)
            if let dInput { dH = dInput }
        }
    }
}
