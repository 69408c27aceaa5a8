import Foundation
@testable import Segmentation
import Testing

/// A damaged model.json is an error naming the file and the key, never a
/// crash (issue 15, defect 2), in a directory and inside model.tar.gz alike.
@Suite("model.json validation", .serialized)
struct ModelDescriptionTests {
    static var valid: [String: Any] {
        ["format_version": 1, "origin": "test", "crop_size": 64,
         "network": ["algorithm": "fcn", "backbone": "resnet-50", "stem": "deep", "num_classes": 3, "aux": true],
         "normalization": ["mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]]]
    }

    /// `valid` with `path` (dot-separated) set to `value`, or removed when `value` is nil.
    static func damaged(_ path: String, _ value: Any?) -> [String: Any] {
        func set(_ object: [String: Any], _ keys: ArraySlice<Substring>) -> [String: Any] {
            var object = object
            let key = String(keys.first!)
            if keys.count == 1 {
                object[key] = value
            } else {
                object[key] = set(object[key] as! [String: Any], keys.dropFirst())
            }
            return object
        }
        return set(valid, ArraySlice(path.split(separator: ".")))
    }

    /// (how model.json is damaged, what the error must say besides the file name)
    static let cases: [(String, Data, String)] = {
        func json(_ object: [String: Any]) -> Data { try! JSONSerialization.data(withJSONObject: object) }
        return [
            ("num_classes 0", json(damaged("network.num_classes", 0)), "network.num_classes"),
            ("num_classes 1", json(damaged("network.num_classes", 1)), "network.num_classes"),
            ("num_classes 300", json(damaged("network.num_classes", 300)), "network.num_classes"),
            ("num_classes \"x\"", json(damaged("network.num_classes", "x")), "network.num_classes"),
            ("two means", json(damaged("normalization.mean", [0.5, 0.5])), "normalization.mean"),
            ("std 0", json(damaged("normalization.std", [0.2, 0, 0.2])), "normalization.std"),
            ("unknown algorithm", json(damaged("network.algorithm", "unet")), "network.algorithm"),
            ("unknown backbone", json(damaged("network.backbone", "resnet-18")), "network.backbone"),
            ("no network", json(damaged("network", nil)), "network"),
            ("format_version 99", json(damaged("format_version", 99)), "format_version 99"),
            ("not JSON", Data("{ this is not json".utf8), "not valid JSON"),
            ("empty", Data(), "empty"),
            ("an array", Data("[1, 2]".utf8), "JSON object"),
            ("crop_size -4", json(damaged("crop_size", -4)), "crop_size"),
        ]
    }()

    /// A valid model directory (weights of a 3-class FCN) under `root/model`.
    static func modelDirectory(in root: URL) throws -> URL {
        let directory = root.appendingPathComponent("model")
        try ModelDirectory.write(PredictorTests.model, to: directory, hyperparameters: [:], origin: "test")
        return directory
    }

    @Test func everyDamageIsAnErrorNamingFileAndKey() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let directory = try Self.modelDirectory(in: fixture.root)
        let descriptionFile = directory.appendingPathComponent(ModelDirectory.descriptionFile)
        // The written model.json is what the table damages: it reads back.
        try JSONSerialization.data(withJSONObject: Self.valid).write(to: descriptionFile)
        #expect(try ModelDirectory.read(directory).configuration.classCount == 3)
        for (name, data, mention) in Self.cases {
            try data.write(to: descriptionFile)
            do {
                _ = try ModelDirectory.read(directory)
                Issue.record("\(name): no error")
            } catch {
                let text = "\(error)"
                #expect(text.contains(descriptionFile.path) && text.contains(mention), "\(name): \(text)")
            }
            // The same inside model.tar.gz (model.json alone: it is read and refused before any weights).
            let archive = fixture.url("model.tar.gz")
            try writeTarGz([(ModelDirectory.descriptionFile, descriptionFile)], to: archive)
            do {
                _ = try ModelDirectory.read(archive)
                Issue.record("\(name) in model.tar.gz: no error")
            } catch {
                let text = "\(error)"
                #expect(text.contains(archive.path) && text.contains("model.json") && text.contains(mention), "\(name): \(text)")
            }
            try FileManager.default.removeItem(at: archive)
        }
    }

    @Test func weightsThatDoNotFitNameTheTensorAndBothShapes() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let directory = try Self.modelDirectory(in: fixture.root)
        try JSONSerialization.data(withJSONObject: Self.damaged("network.num_classes", 5))
            .write(to: directory.appendingPathComponent(ModelDirectory.descriptionFile))
        do {
            _ = try ModelDirectory.read(directory)
            Issue.record("no error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("model_best.safetensors") && text.contains("head.block.4.weight")
                    && text.contains("[5, 512, 1, 1]") && text.contains("[3, 512, 1, 1]"), "\(text)")
        }
    }

    /// An imported checkpoint with more classes than an 8-bit mask can hold
    /// is refused (issue 15, defect 8), not a precondition failure later.
    @Test func moreThan255ClassesIsRefused() throws {
        let configuration = NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .standard, classCount: 300, auxiliaryHead: false)
        #expect(throws: NetworkConfiguration.InvalidConfiguration.self) { try configuration.validate() }
        #expect(throws: Never.self) { try NetworkConfiguration(algorithm: .fcn, classCount: 255).validate() }
    }
}
