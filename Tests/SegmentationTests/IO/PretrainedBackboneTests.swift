import Foundation
@testable import Segmentation
import Testing

@Suite("Pretrained backbone", .serialized)
struct PretrainedBackboneTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pretrained-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A backbone-only file (standard stem, ResNet-50) under our names, and a KnownFile whose name promises its hash.
    func makeBackboneFile(in directory: URL, hash: PretrainedBackbone.HashAlgorithm) throws -> (URL, PretrainedBackbone.KnownFile, ParameterStore) {
        let (_, parameters) = SegmentationNetwork.make(
            NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .standard, classCount: 2, auxiliaryHead: false), seed: 5)
        let backbone = parameters.namedTensors.filter { $0.key.hasPrefix("backbone.") }
        let staging = directory.appendingPathComponent("staging.safetensors")
        try SafeTensorsFile(tensors: backbone).write(to: staging)
        let digest = try PretrainedBackbone.hexDigest(of: staging, hash)
        let name = "resnet50-\(digest.prefix(8)).safetensors"
        let url = directory.appendingPathComponent(name)
        try FileManager.default.moveItem(at: staging, to: url)
        let known = PretrainedBackbone.KnownFile(
            fileName: name, depth: .resnet50, stem: .standard, url: URL(string: "http://127.0.0.1:9/\(name)")!,
            hash: hash, hashPrefix: String(digest.prefix(8)))
        return (url, known, parameters)
    }

    @Test func cachedFileIsVerifiedAndLoaded() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (url, known, reference) = try makeBackboneFile(in: directory, hash: .sha256)
        let found = try PretrainedBackbone.locate(depth: .resnet50, cacheDirectory: directory, knownFiles: [known], allowDownload: false)
        #expect(found == url)
        #expect(try PretrainedBackbone.architecture(of: url) == (.standard, .resnet50))

        // Into a fresh network with another head and class count: only the backbone is replaced.
        let (_, fresh) = SegmentationNetwork.make(
            NetworkConfiguration(algorithm: .deeplab, backbone: .resnet50, stem: .standard, classCount: 7), seed: 9)
        var parameters = fresh
        try PretrainedBackbone.load(url, into: &parameters)
        for id in parameters.ids {
            let name = parameters.name(of: id)
            if name.hasPrefix("backbone.") {
                #expect(parameters[id] == reference[reference.id(named: name)!], "\(name)")
            } else {
                #expect(parameters[id] == fresh[id], "\(name) changed")
            }
        }
    }

    @Test func damagedCachedFileFailsItsHash() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (url, known, _) = try makeBackboneFile(in: directory, hash: .sha1)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: url)
        #expect(throws: PretrainedBackbone.PretrainedError.self) {
            try PretrainedBackbone.locate(depth: .resnet50, cacheDirectory: directory, knownFiles: [known], allowDownload: false)
        }
    }

    @Test func offlineAndMissingSaysWhatToPlaceWhere() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            // 127.0.0.1:9 (discard) refuses the connection at once: the offline case.
            let known = PretrainedBackbone.knownFiles.map { file -> PretrainedBackbone.KnownFile in
                var copy = file
                copy.url = URL(string: "http://127.0.0.1:9/\(file.fileName)")!
                return copy
            }
            _ = try PretrainedBackbone.locate(depth: .resnet101, cacheDirectory: directory, knownFiles: known)
            Issue.record("locate succeeded without any file")
        } catch let error as PretrainedBackbone.PretrainedError {
            let message = error.description
            #expect(message.contains("resnet101_v1s-bd93a83c.params") && message.contains("resnet101-63fe2227.pth"))
            #expect(message.contains(directory.path) && message.contains("use_pretrained_model=False"))
            #expect(message.contains("download failed"))
        }
        // An explicit file is used as given.
        let explicit = directory.appendingPathComponent("mine.pth")
        #expect(try PretrainedBackbone.locate(depth: .resnet50, explicitFile: explicit, cacheDirectory: directory) == explicit)
    }

    @Test func cacheDirectoryFollowsTheEnvironment() {
        #expect(PretrainedBackbone.defaultCacheDirectory(environment: ["SEGMENTATION_CACHE": "/data/cache"]).path == "/data/cache")
        #expect(PretrainedBackbone.defaultCacheDirectory(environment: [:]).path.hasSuffix(".cache/swift-segmentation"))
    }
}
