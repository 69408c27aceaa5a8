import Foundation
@testable import Segmentation
import Testing

@Suite("Import and model directories", .serialized)
struct ImportTests {
    /// The names real torchvision and GluonCV models use (recorded by the
    /// fixture generators from the live frameworks) map onto exactly our names.
    @Test(arguments: [("gluoncv_networks.safetensors", "gluoncv_fcn", WeightSource.gluonCV),
                      ("gluoncv_networks.safetensors", "gluoncv_psp", .gluonCV),
                      ("gluoncv_networks.safetensors", "gluoncv_deeplab", .gluonCV),
                      ("torchvision_networks.safetensors", "torchvision_fcn", .torchvision),
                      ("torchvision_networks.safetensors", "torchvision_deeplab", .torchvision)])
    func realFrameworkNamesMapOntoOurs(_ file: String, _ key: String, _ source: WeightSource) throws {
        let fixture = try loadFixture(file)
        let sourceNames = try #require(fixture.metadata[key + "_source_names"]).split(separator: ",").map(String.init)
        let ours = try #require(fixture.metadata[key]).split(separator: ",").map(String.init)
        let tensors = Dictionary(uniqueKeysWithValues: sourceNames.map { ($0, Tensor.zeros([1])) })
        let (mapped, unmapped) = WeightNameMapping.map(tensors, from: source)
        #expect(unmapped.isEmpty, "unmapped: \(unmapped.prefix(5))")
        #expect(mapped.keys.sorted() == ours.sorted())
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func importWriteAndReadBack() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = NetworkConfiguration(algorithm: .psp, backbone: .resnet50, stem: .standard, classCount: 4)
        let (_, parameters) = SegmentationNetwork.make(configuration, seed: 2)
        let checkpoint = directory.appendingPathComponent("psp.safetensors")
        try SafeTensorsFile(tensors: parameters.namedTensors).write(to: checkpoint)

        let (model, source, format) = try ModelImporter.importModel(from: checkpoint)
        #expect(source == .native && format == .safetensors)
        #expect(model.configuration == configuration)
        #expect(model.parameters.tensors == parameters.tensors)

        let modelDirectory = directory.appendingPathComponent("model")
        try ModelDirectory.write(model, to: modelDirectory, hyperparameters: ["algorithm": "psp"], origin: "test")
        let read = try ModelDirectory.read(modelDirectory)
        #expect(read.configuration == configuration)
        #expect(read.parameters.names == parameters.names)
        #expect(read.parameters.tensors == parameters.tensors)
        #expect(read.summary.contains("psp") && read.summary.contains("standard stem"))
        let files = try FileManager.default.contentsOfDirectory(atPath: modelDirectory.path).sorted()
        #expect(files == ["hyperparams.json", "model.json", "model_best.safetensors"])

        // model.tar.gz holds the same model and reads back the same way.
        try ModelDirectory.archive(modelDirectory)
        let archive = modelDirectory.appendingPathComponent("model.tar.gz")
        let fromArchive = try ModelDirectory.read(archive)
        #expect(fromArchive.configuration == configuration && fromArchive.parameters.tensors == parameters.tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: modelDirectory.path).sorted()
                == ["hyperparams.json", "model.json", "model.tar.gz", "model_best.safetensors"])
        // A truncated archive is an error naming the file, not a crash.
        let bytes = try Data(contentsOf: archive)
        let truncated = directory.appendingPathComponent("truncated.tar.gz")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        #expect(throws: WeightFileError.self) { try ModelDirectory.read(truncated) }
    }

    @Test func mismatchesAndBadFilesAreErrorsNamingTheProblem() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, classCount: 3)
        let (_, parameters) = SegmentationNetwork.make(configuration)
        let checkpoint = directory.appendingPathComponent("fcn.safetensors")
        try SafeTensorsFile(tensors: parameters.namedTensors).write(to: checkpoint)

        #expect(throws: ModelImporter.ImportError.mismatch(file: checkpoint.path, option: "--num-classes", expected: "21",
                                                            found: "a 3-class classifier")) {
            try ModelImporter.importModel(from: checkpoint, expecting: .init(classCount: 21))
        }
        #expect(throws: ModelImporter.ImportError.mismatch(file: checkpoint.path, option: "--algorithm", expected: "deeplab",
                                                            found: "a fcn head")) {
            try ModelImporter.importModel(from: checkpoint, expecting: .init(algorithm: .deeplab))
        }
        #expect(throws: ModelImporter.ImportError.self) {
            try ModelImporter.importModel(from: checkpoint, expecting: .init(backbone: .resnet101))
        }

        // A tensor with the wrong shape names the key and both shapes.
        var tensors = parameters.namedTensors
        tensors["head.block.0.weight"] = .zeros([512, 2048, 1, 1])
        let bad = directory.appendingPathComponent("bad.safetensors")
        try SafeTensorsFile(tensors: tensors).write(to: bad)
        #expect(throws: WeightFileError.shapeMismatch(file: bad.path, key: "head.block.0.weight",
                                                      expected: [512, 2048, 3, 3], found: [512, 2048, 1, 1])) {
            try ModelImporter.importModel(from: bad)
        }

        // A backbone without a head cannot be imported as a segmentation model.
        let backboneOnly = directory.appendingPathComponent("backbone.safetensors")
        try SafeTensorsFile(tensors: tensors.filter { $0.key.hasPrefix("backbone.") }).write(to: backboneOnly)
        #expect(throws: WeightFileError.self) { try ModelImporter.importModel(from: backboneOnly) }

        // Not a weights file at all.
        let text = directory.appendingPathComponent("notes.pth")
        try Data("hello, this is not a checkpoint".utf8).write(to: text)
        #expect(throws: WeightFileError.self) { try ModelImporter.importModel(from: text) }

        // A directory without model.json.
        #expect(throws: WeightFileError.self) { try ModelDirectory.read(directory) }
    }
}
