import Foundation

/// Reads any supported weights file, recognized by its bytes (not its
/// extension): safetensors, PyTorch `.pth` (zip or legacy), MXNet `.params`.
public enum WeightFile {
    public enum Format: String, Sendable {
        case safetensors, pytorch, mxnet
    }

    public struct Contents: Sendable {
        public var format: Format
        /// The tensors under our names.
        public var tensors: [String: Tensor]
        public var source: WeightSource
    }

    public static func detectFormat(_ data: Data, file: String) throws -> Format {
        let head = [UInt8](data.prefix(16))
        guard head.count >= 8 else {
            throw WeightFileError.malformed(file: file, reason: "file is \(data.count) bytes, too short for any weights format")
        }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head[0] == 0x80 { return .pytorch }  // zip, or pickle PROTO
        if head.prefix(8) == [0x12, 0x01, 0, 0, 0, 0, 0, 0] { return .mxnet }  // NDArray list magic 0x112
        if head.count > 8, head[8] == UInt8(ascii: "{") { return .safetensors }
        throw WeightFileError.malformed(
            file: file, reason: "not a safetensors, PyTorch .pth or MXNet .params file (unrecognized first bytes)")
    }

    /// Reads and renames to our parameter names. `source` defaults to what the
    /// format implies: PyTorch → torchvision, MXNet → GluonCV, safetensors →
    /// ours (a safetensors file with torchvision or GluonCV names is detected by its keys).
    public static func read(contentsOf url: URL) throws -> Contents {
        let data = try WeightFileError.contents(of: url)
        let format = try detectFormat(data, file: url.path)
        let raw: [String: Tensor]
        switch format {
        case .safetensors: raw = try SafeTensorsFile(data: data, file: url.path).tensors
        case .pytorch: raw = try PyTorchStateDict.read(data: data, file: url.path)
        case .mxnet: raw = try MXNetParams.read(data: data, file: url.path)
        }
        let source: WeightSource
        switch format {
        case .pytorch: source = .torchvision
        case .mxnet: source = .gluonCV
        case .safetensors:
            if raw.keys.contains(where: { $0.hasPrefix("backbone.") || $0.hasPrefix("head.") }) {
                source = raw.keys.contains { $0.hasPrefix("classifier.") } ? .torchvision : .native
            } else if raw.keys.contains(where: { $0.hasSuffix(".gamma") }) {
                source = .gluonCV
            } else {
                source = .torchvision
            }
        }
        let (mapped, unmapped) = WeightNameMapping.map(raw, from: source)
        guard unmapped.isEmpty else {
            throw WeightFileError.malformed(
                file: url.path,
                reason: "\(unmapped.count) tensor(s) match no known \(source.rawValue) name, e.g. "
                    + unmapped.prefix(3).map { "'\($0)'" }.joined(separator: ", "))
        }
        return Contents(format: format, tensors: mapped, source: source)
    }
}

extension ParameterStore {
    /// Copies `tensors` (our names) into the store.
    ///
    /// - Parameter prefix: only store entries whose name starts with this are
    ///   required (e.g. "backbone." for a pretrained backbone); nil = all.
    /// - Throws: a missing tensor, a shape mismatch (naming key, expected and
    ///   found shapes), or tensors the store has no place for.
    public mutating func load(_ tensors: [String: Tensor], requiring prefix: String? = nil, file: String) throws {
        for id in ids where prefix.map({ name(of: id).hasPrefix($0) }) ?? true {
            let key = name(of: id)
            guard let tensor = tensors[key] else { throw WeightFileError.missingTensor(file: file, key: key) }
            guard tensor.shape == self[id].shape else {
                throw WeightFileError.shapeMismatch(
                    file: file, key: key, expected: self[id].shape.dimensions, found: tensor.shape.dimensions)
            }
            self[id] = tensor
        }
        let unexpected = tensors.keys.filter { self.id(named: $0) == nil }.sorted()
        guard unexpected.isEmpty else {
            throw WeightFileError.malformed(
                file: file, reason: "\(unexpected.count) tensor(s) have no place in this network, e.g. "
                    + unexpected.prefix(3).map { "'\($0)'" }.joined(separator: ", "))
        }
    }
}
