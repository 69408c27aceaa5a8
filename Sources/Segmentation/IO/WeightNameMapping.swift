/// Where a weights file comes from, which fixes its parameter names.
public enum WeightSource: String, Sendable, Codable {
    /// Our own names (safetensors written by this library).
    case native
    /// torchvision: `backbone.*` (or bare `conv1.*`, `layer*` for an ImageNet
    /// ResNet), `classifier.*`, `aux_classifier.*`; BN `weight`/`bias`.
    case torchvision
    /// GluonCV / MXNet: `conv1.*`, `bn1.*`, `layer*`, `head.*`, `auxlayer.*`;
    /// BN `gamma`/`beta`.
    case gluonCV
}

/// Explicit tables from foreign parameter names to ours.
///
/// Our names are state-dict style and stable (they are the native file
/// format): `backbone.{conv1…, bn1, layerN.B.{conv,bn}{1,2,3}, layerN.0.downsample.{0,1}}`,
/// `head.block.{0,1,4}`, `head.psp.convK.{0,1}`, `head.aspp.convs.{0…3}.{0,1}`,
/// `head.aspp.convs.4.{1,2}`, `head.aspp.project.{0,1}`, `aux_head.block.{0,1,4}`.
/// BN tensors are `weight`, `bias`, `running_mean`, `running_var`.
public enum WeightNameMapping {
    /// Prefix rewrites for torchvision checkpoints, tried in order; the first match wins.
    /// `classifier.N` differs between FCN (N = 0 conv, 1 BN, 4 conv) and
    /// DeepLabV3 (0 ASPP, 1 conv, 2 BN, 4 conv), hence two tables.
    static let torchvisionFCN: [(String, String)] = [
        ("backbone.", "backbone."),
        ("classifier.0.", "head.block.0."), ("classifier.1.", "head.block.1."), ("classifier.4.", "head.block.4."),
        ("aux_classifier.0.", "aux_head.block.0."), ("aux_classifier.1.", "aux_head.block.1."),
        ("aux_classifier.4.", "aux_head.block.4."),
    ]
    static let torchvisionDeepLab: [(String, String)] = [
        ("backbone.", "backbone."),
        ("classifier.0.convs.", "head.aspp.convs."), ("classifier.0.project.", "head.aspp.project."),
        ("classifier.1.", "head.block.0."), ("classifier.2.", "head.block.1."), ("classifier.4.", "head.block.4."),
        ("aux_classifier.0.", "aux_head.block.0."), ("aux_classifier.1.", "aux_head.block.1."),
        ("aux_classifier.4.", "aux_head.block.4."),
    ]
    /// A bare torchvision ImageNet ResNet (`resnet50-0676ba61.pth`).
    static let torchvisionClassifier: [(String, String)] = [
        ("conv1.", "backbone.conv1."), ("bn1.", "backbone.bn1."), ("layer", "backbone.layer"),
    ]
    /// GluonCV segmentation models and ImageNet ResNets (`resnet50_v1s-25a187fa.params`);
    /// `gamma`/`beta` become `weight`/`bias` after the prefix rewrite.
    static let gluonCV: [(String, String)] = [
        ("conv1.", "backbone.conv1."), ("bn1.", "backbone.bn1."), ("layer", "backbone.layer"),
        ("head.aspp.concurent.4.gap.", "head.aspp.convs.4."), ("head.aspp.concurent.", "head.aspp.convs."),
        ("head.", "head."), ("auxlayer.", "aux_head."),
    ]

    /// Foreign tensors that have no counterpart here and are dropped: BN's
    /// step counter and the ImageNet classifier.
    static func isIgnored(_ name: String) -> Bool {
        name.hasSuffix("num_batches_tracked") || name.hasPrefix("fc.") || name.hasPrefix("output.")
    }

    /// Maps every tensor of a foreign file to our names. Tensors in neither
    /// the table nor the ignore list are returned in `unmapped` so the caller
    /// can report them.
    public static func map(
        _ tensors: [String: Tensor], from source: WeightSource
    ) -> (mapped: [String: Tensor], unmapped: [String]) {
        let table: [(String, String)]
        switch source {
        case .native:
            return (tensors, [])
        case .torchvision:
            if tensors.keys.contains(where: { $0.hasPrefix("backbone.") || $0.hasPrefix("classifier.") }) {
                table = tensors.keys.contains { $0.hasPrefix("classifier.0.convs.") } ? torchvisionDeepLab : torchvisionFCN
            } else {
                table = torchvisionClassifier
            }
        case .gluonCV:
            table = gluonCV
        }
        var mapped: [String: Tensor] = [:]
        var unmapped: [String] = []
        for (name, tensor) in tensors {
            if isIgnored(name) { continue }
            guard let (from, to) = table.first(where: { name.hasPrefix($0.0) }) else {
                unmapped.append(name)
                continue
            }
            var ours = to + name.dropFirst(from.count)
            if source == .gluonCV {
                if ours.hasSuffix(".gamma") { ours = ours.dropLast(6) + ".weight" }
                if ours.hasSuffix(".beta") { ours = ours.dropLast(5) + ".bias" }
            }
            mapped[ours] = tensor
        }
        return (mapped, unmapped.sorted())
    }
}
