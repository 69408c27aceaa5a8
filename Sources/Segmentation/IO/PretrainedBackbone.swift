import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// ImageNet weights for the backbone (SPEC §7): an explicit file, else a
/// known file in the cache directory, else a download from the official URL,
/// verified by the hash its name carries.
public enum PretrainedBackbone {
    public enum HashAlgorithm: String, Sendable {
        /// GluonCV names files by the first 8 hex digits of their SHA-1.
        case sha1
        /// torchvision names files by the first 8 hex digits of their SHA-256.
        case sha256
    }

    public struct KnownFile: Sendable, Equatable {
        public var fileName: String
        public var depth: ResNetDepth
        public var stem: ResNetStem
        public var url: URL
        /// When the download is a zip, the member holding the weights.
        public var archiveMember: String?
        public var hash: HashAlgorithm
        public var hashPrefix: String

        public init(fileName: String, depth: ResNetDepth, stem: ResNetStem, url: URL, archiveMember: String? = nil,
                    hash: HashAlgorithm, hashPrefix: String) {
            self.fileName = fileName
            self.depth = depth
            self.stem = stem
            self.url = url
            self.archiveMember = archiveMember
            self.hash = hash
            self.hashPrefix = hashPrefix
        }
    }

    /// In order of preference: GluonCV's v1s (the deep stem SageMaker uses), then torchvision's.
    public static let knownFiles: [KnownFile] = [
        KnownFile(fileName: "resnet50_v1s-25a187fa.params", depth: .resnet50, stem: .deep,
                  url: URL(string: "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/models/resnet50_v1s-25a187fa.zip")!,
                  archiveMember: "resnet50_v1s-25a187fa.params", hash: .sha1, hashPrefix: "25a187fa"),
        KnownFile(fileName: "resnet101_v1s-bd93a83c.params", depth: .resnet101, stem: .deep,
                  url: URL(string: "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/models/resnet101_v1s-bd93a83c.zip")!,
                  archiveMember: "resnet101_v1s-bd93a83c.params", hash: .sha1, hashPrefix: "bd93a83c"),
        KnownFile(fileName: "resnet50-0676ba61.pth", depth: .resnet50, stem: .standard,
                  url: URL(string: "https://download.pytorch.org/models/resnet50-0676ba61.pth")!,
                  hash: .sha256, hashPrefix: "0676ba61"),
        KnownFile(fileName: "resnet101-63fe2227.pth", depth: .resnet101, stem: .standard,
                  url: URL(string: "https://download.pytorch.org/models/resnet101-63fe2227.pth")!,
                  hash: .sha256, hashPrefix: "63fe2227"),
    ]

    public enum PretrainedError: Error, CustomStringConvertible, Equatable {
        case notFound(depth: ResNetDepth, cacheDirectory: String, candidates: [String], downloadFailure: String?)
        case hashMismatch(file: String, algorithm: String, expectedPrefix: String, actual: String)
        case wrongDepth(file: String, expected: ResNetDepth, found: String)

        public var description: String {
            switch self {
            case let .notFound(depth, directory, candidates, failure):
                return "no pretrained \(depth.rawValue) weights: place \(candidates.joined(separator: " or ")) in \(directory) "
                    + "(or set SEGMENTATION_CACHE, or pass --pretrained-weights FILE), or set use_pretrained_model=False"
                    + (failure.map { "; the download failed: \($0)" } ?? "")
            case let .hashMismatch(file, algorithm, expected, actual):
                return "\(file): \(algorithm) is \(actual), but the file name promises \(expected)…; the file is damaged or not the official one — delete it and retry"
            case let .wrongDepth(file, expected, found):
                return "\(file): holds \(found) weights, but the backbone is \(expected.rawValue)"
            }
        }
    }

    /// `$SEGMENTATION_CACHE`, else `~/.cache/swift-segmentation`.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let path = environment["SEGMENTATION_CACHE"], !path.isEmpty { return URL(fileURLWithPath: path) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/swift-segmentation")
    }

    /// The file to load: `explicitFile` as given; else the first known file
    /// for `depth` present in `cacheDirectory` (its hash checked); else a
    /// download into the cache (when `allowDownload`), hash checked.
    public static func locate(
        depth: ResNetDepth, explicitFile: URL? = nil, cacheDirectory: URL = defaultCacheDirectory(),
        knownFiles: [KnownFile] = knownFiles, allowDownload: Bool = true, log: (String) -> Void = { _ in }
    ) throws -> URL {
        if let explicitFile { return explicitFile }
        let candidates = knownFiles.filter { $0.depth == depth }
        for known in candidates {
            let url = cacheDirectory.appendingPathComponent(known.fileName)
            if FileManager.default.fileExists(atPath: url.path) {
                try verify(url, known)
                return url
            }
        }
        var failure: String?
        if allowDownload, let known = candidates.first {
            do {
                log("downloading \(known.url.absoluteString) into \(cacheDirectory.path)")
                return try download(known, into: cacheDirectory)
            } catch let error as URLError {
                failure = error.localizedDescription
            } catch {
                failure = "\(error)"
            }
        }
        throw PretrainedError.notFound(depth: depth, cacheDirectory: cacheDirectory.path,
                                       candidates: candidates.map(\.fileName), downloadFailure: failure)
    }

    /// Loads the backbone tensors of a pretrained file into `parameters`
    /// (whose network must have the file's stem and depth).
    public static func load(_ url: URL, into parameters: inout ParameterStore) throws {
        let contents = try WeightFile.read(contentsOf: url)
        try parameters.load(contents.tensors.filter { $0.key.hasPrefix("backbone.") }, requiring: "backbone.", file: url.path)
    }

    /// The stem of the pretrained file at `url`, after checking that it holds
    /// a `depth` backbone (the one place that check is made).
    public static func stem(of url: URL, requiring depth: ResNetDepth) throws -> ResNetStem {
        let architecture = try architecture(of: url)
        guard architecture.depth == depth else {
            throw PretrainedError.wrongDepth(file: url.path, expected: depth, found: architecture.depth.rawValue)
        }
        return architecture.stem
    }

    /// The stem and depth a pretrained file holds (from its tensor names).
    public static func architecture(of url: URL) throws -> (stem: ResNetStem, depth: ResNetDepth) {
        let tensors = try WeightFile.read(contentsOf: url).tensors
        let stem: ResNetStem = tensors["backbone.conv1.0.weight"] != nil ? .deep : .standard
        let blocks = Set(tensors.keys.compactMap { key -> Substring? in
            key.hasPrefix("backbone.layer3.") ? key.split(separator: ".")[2] : nil
        }).count
        switch blocks {
        case 6: return (stem, .resnet50)
        case 23: return (stem, .resnet101)
        default: throw WeightFileError.malformed(file: url.path, reason: "layer3 has \(blocks) blocks: not a ResNet-50 or ResNet-101")
        }
    }

    static func hexDigest(of url: URL, _ algorithm: HashAlgorithm) throws -> String {
        let data = try Data(contentsOf: url, options: .mappedIfSafe)
        switch algorithm {
        case .sha1: return Insecure.SHA1.hash(data: data).map { String(format: "%02x", $0) }.joined()
        case .sha256: return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        }
    }

    static func verify(_ url: URL, _ known: KnownFile) throws {
        let digest = try hexDigest(of: url, known.hash)
        guard digest.hasPrefix(known.hashPrefix) else {
            throw PretrainedError.hashMismatch(file: url.path, algorithm: known.hash.rawValue.uppercased(),
                                               expectedPrefix: known.hashPrefix, actual: digest)
        }
    }

    /// Downloads into a temporary file beside the destination, verifies, then renames.
    static func download(_ known: KnownFile, into directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = try fetch(known.url)
        var payload = data
        if let member = known.archiveMember {
            guard let entry = try readZipEntries(data, file: known.url.absoluteString).first(where: { $0.key.hasSuffix(member) }) else {
                throw WeightFileError.malformed(file: known.url.absoluteString, reason: "the archive holds no \(member)")
            }
            payload = entry.value
        }
        let destination = directory.appendingPathComponent(known.fileName)
        let staging = directory.appendingPathComponent(".\(known.fileName).download")
        try payload.write(to: staging)
        do {
            try verify(staging, known)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        if rename(staging.path, destination.path) != 0 {
            throw WeightFileError.writeFailed(file: destination.path, reason: String(cString: strerror(errno)))
        }
        return destination
    }

    /// A blocking GET with a 60 s timeout.
    static func fetch(_ url: URL) throws -> Data {
        final class Box: @unchecked Sendable {  // written once by the completion handler before the semaphore signals
            var result: Result<Data, Error> = .failure(URLError(.unknown))
        }
        let box = Box()
        let semaphore = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 60
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                box.result = .failure(error)
            } else if let http = response as? HTTPURLResponse, http.statusCode != 200 {
                box.result = .failure(URLError(.badServerResponse, userInfo: [NSLocalizedDescriptionKey: "HTTP \(http.statusCode)"]))
            } else {
                box.result = .success(data ?? Data())
            }
            semaphore.signal()
        }
        task.resume()
        semaphore.wait()
        return try box.result.get()
    }
}
