import Foundation
@testable import Segmentation
import Testing

/// One loader for file, container and `--set` (issue 15, defect 6), and
/// validation that library users get too (defect 8).
@Suite("Configuration loader", .serialized)
struct ConfigurationLoaderTests {
    @Test func theCropSizeNoteSurvivesFileContainerAndOverrides() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.write(#"{"num_classes": 3, "num_training_samples": 8, "crop_size": 250}"#, to: "h.json")
        let (fromFile, fileNotes) = try TrainingConfiguration.load(file: fixture.url("h.json"))
        #expect(fromFile.cropSize == 256)
        #expect(fileNotes == ["crop_size 250 rounded up to 256, a multiple of 8 (the output stride)"])

        let (overridden, overrideNotes) = try TrainingConfiguration.load(file: fixture.url("h.json"), overrides: ["crop_size=100"])
        #expect(overridden.cropSize == 104 && overrideNotes.first?.contains("crop_size 100 rounded up to 104") == true)

        let environment = SageMakerEnvironment(root: fixture.url("root"))
        try fixture.write(#"{"num_classes": "3", "num_training_samples": "8", "crop_size": "250"}"#,
                          to: "root/opt/ml/input/config/hyperparameters.json")
        let (container, containerNotes) = try environment.configuration()
        #expect(container.cropSize == 256 && containerNotes.count == 1)

        let (demo, demoNotes) = try TrainingConfiguration.load(
            base: Demo.recipe.merging(["num_classes": "4", "num_training_samples": "10"]) { $1 }, overrides: ["crop_size=60"])
        #expect(demo.cropSize == 64 && demo.optimizer == .adam && demoNotes.count == 1)

        #expect(throws: ConfigurationError.malformedOverride("epochs")) {
            try TrainingConfiguration.load(file: fixture.url("h.json"), overrides: ["epochs"])
        }
        #expect(throws: ConfigurationError.unknownKey("epoch", suggestion: "epochs")) {
            try TrainingConfiguration.load(file: fixture.url("h.json"), overrides: ["epoch=2"])
        }
        #expect(throws: ConfigurationError.self) { try TrainingConfiguration.load(file: fixture.url("missing.json")) }
    }

    /// The note reaches the user of `segment train --hyperparameters` (it is
    /// printed before the data is read, so a missing data directory suffices).
    @Test func segmentTrainPrintsTheNote() throws {
        try #require(FileManager.default.isExecutableFile(atPath: SageMakerModeTests.segmentBinary.path))
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        try fixture.write(#"{"num_classes": 3, "num_training_samples": 8, "crop_size": 250}"#, to: "h.json")
        let result = try SageMakerModeTests().run(["train", "--data", fixture.url("nothing").path, "--model-dir", fixture.url("out").path,
                                                   "--hyperparameters", fixture.url("h.json").path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("crop_size 250 rounded up to 256"), "\(result.stderr)")
    }

    @Test func handBuiltConfigurationsAreValidated() throws {
        var c = TrainingConfiguration(numClasses: 3, numTrainingSamples: 8)
        try c.validate()
        c.miniBatchSize = 0
        #expect(throws: ConfigurationError.invalid(key: "mini_batch_size", value: "0", expected: "an integer > 0")) { try c.validate() }
        // The trainer checks before it touches the data or divides by the batch.
        let trainer = Trainer(configuration: c, dataDirectory: URL(fileURLWithPath: "/nonexistent"),
                              modelDirectory: URL(fileURLWithPath: "/nonexistent/model"))
        #expect(throws: ConfigurationError.self) { try trainer.run() }
        c.miniBatchSize = 2
        c.cropSize = 100
        #expect(throws: ConfigurationError.self) { try c.validate() }
        c.cropSize = 96
        c.learningRate = 2
        #expect(throws: ConfigurationError.self) { try c.validate() }
    }

    /// Each default is written once, in the table: the configuration's
    /// defaults are what the table says.
    @Test func defaultsComeFromTheTable() throws {
        let rendered = TrainingConfiguration.defaults.hyperparameters
        for specification in TrainingConfiguration.specifications {
            if let value = specification.defaultValue { #expect(rendered[specification.key] == value, "\(specification.key)") }
        }
    }

    @Test func aDataBenchmarkWithAnImpossibleSizeThrows() throws {
        #expect(throws: ConfigurationError.self) { try DataBenchmark.run(images: 1, baseSize: 1, cropSize: 240) }
        #expect(throws: ConfigurationError.self) { try DataBenchmark.run(images: 1, baseSize: 520, cropSize: 0) }
    }

    @Test func importingMoreThan255ClassesIsAnError() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        var builder = ParameterBuilder(seed: 0, randomInitialization: false)
        _ = SegmentationNetwork(configuration: NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .standard,
                                                                   classCount: 300, auxiliaryHead: false), builder: &builder)
        let file = fixture.url("wide.safetensors")
        try SafeTensorsFile(tensors: builder.store.namedTensors).write(to: file)
        do {
            _ = try ModelImporter.importModel(from: file)
            Issue.record("a 300-class model was imported")
        } catch {
            #expect("\(error)".contains("num_classes = 300") && "\(error)".contains(file.path), "\(error)")
        }
    }
}
