/// Logits of one forward pass, at the input's height and width.
public struct SegmentationOutput: Sendable {
    /// [N, classes, H, W]
    public var logits: Tensor
    /// [N, classes, H, W] from the aux head; nil in inference or without an aux head.
    public var auxiliaryLogits: Tensor?
}

/// The decoder of a network: one of SPEC §4's three heads.
public enum SegmentationHead: Sendable {
    case fcn(FCNHead)
    case psp(PSPHead)
    case deeplab(DeepLabHead)

    public enum Cache: Sendable {
        case fcn(FCNHead.Cache)
        case psp(PSPHead.Cache)
        case deeplab(DeepLabHead.Cache)
    }

    public func forward(_ x: Tensor, parameters: ParameterStore, context: ForwardContext) -> (Tensor, Cache?) {
        switch self {
        case .fcn(let head):
            let (y, cache) = head.forward(x, parameters: parameters, context: context)
            return (y, cache.map(Cache.fcn))
        case .psp(let head):
            let (y, cache) = head.forward(x, parameters: parameters, context: context)
            return (y, cache.map(Cache.psp))
        case .deeplab(let head):
            let (y, cache) = head.forward(x, parameters: parameters, context: context)
            return (y, cache.map(Cache.deeplab))
        }
    }

    public func backward(
        _ dy: Tensor, cache: Cache, parameters: ParameterStore, gradients: inout ParameterStore, context: ForwardContext
    ) -> Tensor {
        switch (self, cache) {
        case let (.fcn(head), .fcn(cache)):
            return head.backward(dy, cache: cache, parameters: parameters, gradients: &gradients, context: context)
        case let (.psp(head), .psp(cache)):
            return head.backward(dy, cache: cache, parameters: parameters, gradients: &gradients, context: context)
        case let (.deeplab(head), .deeplab(cache)):
            return head.backward(dy, cache: cache, parameters: parameters, gradients: &gradients, context: context)
        default:
            preconditionFailure("head cache of another head type")
        }
    }
}

/// Backbone + head + optional aux head, with logits resized to the input
/// (bilinear, align_corners = true). Parameter names: `backbone.*`, `head.*`,
/// `aux_head.*`; heads learn at 10× the base learning rate.
public struct SegmentationNetwork: Sendable {
    public let configuration: NetworkConfiguration
    public let backbone: ResNet
    public let head: SegmentationHead
    public let auxiliaryHead: FCNHead?
    let upsample = Upsample()

    public struct Cache: Sendable {
        let inputShape: Shape
        let backbone: ResNet.Cache
        let head: SegmentationHead.Cache
        let auxiliaryHead: FCNHead.Cache?
        let featureShape: Shape
    }

    /// Builds the network and registers its parameters with `builder`
    /// (Kaiming-normal convolutions, BN γ = 1, β = 0, running mean 0, variance 1).
    public init(configuration: NetworkConfiguration, builder: inout ParameterBuilder) {
        precondition(configuration.classCount >= 1, "class count must be positive")
        self.configuration = configuration
        backbone = ResNet(depth: configuration.backbone, stem: configuration.stem, builder: &builder)
        let classes = configuration.classCount
        (head, auxiliaryHead) = builder.withLearningRateMultiplier(10) { b in
            let head: SegmentationHead
            switch configuration.algorithm {
            case .fcn: head = .fcn(FCNHead(inputChannels: 2048, classCount: classes, name: "head", builder: &b))
            case .psp: head = .psp(PSPHead(inputChannels: 2048, classCount: classes, name: "head", builder: &b))
            case .deeplab: head = .deeplab(DeepLabHead(inputChannels: 2048, classCount: classes, name: "head", builder: &b))
            }
            let aux = configuration.auxiliaryHead
                ? FCNHead(inputChannels: 1024, classCount: classes, name: "aux_head", builder: &b) : nil
            return (head, aux)
        }
    }

    /// A network with freshly initialized parameters drawn from `seed`.
    public static func make(_ configuration: NetworkConfiguration, seed: UInt64 = 0) -> (SegmentationNetwork, ParameterStore) {
        var builder = ParameterBuilder(seed: seed)
        let network = SegmentationNetwork(configuration: configuration, builder: &builder)
        return (network, builder.store)
    }

    /// `images`: [N, 3, H, W], normalized. In `.inference` nothing is kept for
    /// a backward (the cache is nil) and the aux head is skipped.
    public func forward(_ images: Tensor, parameters: ParameterStore, context: ForwardContext) -> (SegmentationOutput, Cache?) {
        let (height, width) = (images.shape.height, images.shape.width)
        let runsAuxiliaryHead = auxiliaryHead != nil && context.mode == .training
        let (features, backboneCache) = backbone.forward(images, parameters: parameters, context: context,
                                                         keepingC3: runsAuxiliaryHead)
        let (headLogits, headCache) = head.forward(features.c4, parameters: parameters, context: context)
        let logits = upsample.forward(headLogits, height: height, width: width)
        var auxiliaryLogits: Tensor?
        var auxiliaryCache: FCNHead.Cache?
        if let auxiliaryHead, runsAuxiliaryHead, let c3 = features.c3 {
            let (auxLogits, cache) = auxiliaryHead.forward(c3, parameters: parameters, context: context)
            auxiliaryLogits = upsample.forward(auxLogits, height: height, width: width)
            auxiliaryCache = cache
        }
        let output = SegmentationOutput(logits: logits, auxiliaryLogits: auxiliaryLogits)
        guard let backboneCache, let headCache else { return (output, nil) }
        return (output, Cache(inputShape: images.shape, backbone: backboneCache, head: headCache,
                              auxiliaryHead: auxiliaryCache, featureShape: headLogits.shape))
    }

    /// Adds the parameter gradients for output gradients `dLogits` (and
    /// `dAuxiliaryLogits` when the aux head ran) into `gradients`.
    /// The logit gradients are consumed: the input-sized ones are resized to
    /// the heads' outputs first and freed before the heads' backward (a
    /// caller that passes its only reference frees 2 × N·classes·H·W floats
    /// before the backward's peak).
    public func backward(
        dLogits: consuming Tensor, dAuxiliaryLogits: consuming Tensor?, cache: Cache, parameters: ParameterStore,
        gradients: inout ParameterStore, context: ForwardContext
    ) {
        let dHeadLogits = upsample.backward(dLogits, inputShape: cache.featureShape)
        _ = consume dLogits
        var dAuxLogits: Tensor?
        if let dAuxiliaryLogits, auxiliaryHead != nil {
            // c3 and c4 have the same size, so both heads' logits have one shape.
            dAuxLogits = upsample.backward(dAuxiliaryLogits, inputShape: cache.featureShape)
        }
        _ = consume dAuxiliaryLogits
        let dC4 = head.backward(dHeadLogits, cache: cache.head, parameters: parameters, gradients: &gradients, context: context)
        var dC3: Tensor?
        if let auxiliaryHead, let auxCache = cache.auxiliaryHead, let dAuxLogits {
            dC3 = auxiliaryHead.backward(dAuxLogits, cache: auxCache, parameters: parameters, gradients: &gradients, context: context)
        }
        backbone.backward(dC3: dC3, dC4: dC4, cache: cache.backbone, parameters: parameters, gradients: &gradients, context: context)
    }
}
