import Foundation
@testable import Segmentation
import Testing

/// The PyTorch (.pth) and MXNet (.params) readers, against the real files of
/// Fixtures/generate_pytorch_samples.py and generate_gluoncv_fixtures.py.
@Suite("Weight readers")
struct WeightReaderTests {
    static func url(_ name: String) -> URL { KernelFixtures.directory.appendingPathComponent(name) }

    static let pyTorchSamples = ["sample_zip.pth", "sample_legacy.pth", "sample_checkpoint.pth"]
    static let allSamples = pyTorchSamples + ["sample.params"]

    static func reader(for name: String) -> (Data) throws -> [String: Tensor] {
        name.hasSuffix(".params") ? { try MXNetParams.read(data: $0, file: name) } : { try PyTorchStateDict.read(data: $0, file: name) }
    }

    // MARK: Exact values

    @Test(arguments: pyTorchSamples)
    func readsPyTorchCheckpoints(_ name: String) throws {
        let expected = try SafeTensorsFile(contentsOf: Self.url("sample_expected.safetensors")).tensors
        let read = try PyTorchStateDict.read(contentsOf: Self.url(name))
        #expect(read.keys.sorted() == expected.keys.sorted())
        for (key, tensor) in expected {
            #expect(read[key] == tensor, "\(name): \(key) is \(read[key].map(\.description) ?? "missing"), expected \(tensor)")
        }
        // The layouts the fixture promises are really there.
        #expect(read["shared.transposed"]?.shape == [6, 4])
        #expect(read["shared.slice"]?.scalars == [2, 2.25, 2.5, 3.5, 3.75, 4])
        #expect(read["backbone.bn1.num_batches_tracked"]?.shape == Shape([]))
        #expect(read["backbone.bn1.num_batches_tracked"]?.scalars == [12345])
    }

    @Test func readsMXNetParams() throws {
        let read = try MXNetParams.read(contentsOf: Self.url("sample.params"))
        #expect(read.keys.sorted() == ["conv1.0.weight", "conv1.1.gamma", "conv1.1.running_var", "head.block.4.bias"])
        #expect(read["conv1.0.weight"]?.shape.rank == 4)
        for (name, tensor) in read {
            let ours = name.hasPrefix("head.") ? name : "backbone." + name.replacingOccurrences(of: ".gamma", with: ".weight")
            #expect(tensor == NetworkFill.tensor(named: ours, shape: tensor.shape), "\(name)")
        }
    }

    // MARK: Hostile files

    @Test func refusesPicklesThatNameForbiddenGlobals() throws {
        for (name, global) in [("evil_os_system.pth", "os.system"), ("evil_builtins_eval.pth", "builtins.eval")] {
            let url = Self.url(name)
            #expect(throws: WeightFileError.forbiddenGlobal(file: url.path, name: global)) {
                try PyTorchStateDict.read(contentsOf: url)
            }
            #expect(WeightFileError.forbiddenGlobal(file: url.path, name: global).description.contains("refuses to load"))
        }
    }

    @Test func refusesAPlainPickle() {
        // {} pickled with protocol 2: a pickle, but not a torch.save file.
        let error = #expect(throws: WeightFileError.self) {
            try PyTorchStateDict.read(data: Data([0x80, 0x02, 0x7D, 0x71, 0x00, 0x2E]), file: "plain.pkl")
        }
        #expect(error?.description.contains("not a PyTorch checkpoint") == true)
    }

    @Test func unsupportedOpcodeIsNamedWithItsOffset() {
        // INST 'i' (which would instantiate a class) at offset 2.
        let data = Data([0x80, 0x02, 0x69] + Array("os\nsystem\n".utf8) + [0x2E])
        let error = #expect(throws: WeightFileError.self) { try PyTorchStateDict.read(data: data, file: "inst.pkl") }
        let text = error?.description ?? ""
        #expect(text.contains("0x69") && text.contains("offset 2"), "\(text)")
    }

    // MARK: Corruption

    @Test(arguments: allSamples)
    func truncatedFilesAreErrors(_ name: String) throws {
        let data = try Data(contentsOf: Self.url(name))
        let read = Self.reader(for: name)
        for step in 0..<50 {
            let cut = step * data.count / 50
            #expect(throws: WeightFileError.self, "\(name) cut at \(cut) of \(data.count)") { try read(data.prefix(cut)) }
        }
    }

    @Test(arguments: allSamples)
    func flippedBytesAreErrorsOrHarmless(_ name: String) throws {
        let data = try Data(contentsOf: Self.url(name))
        let read = Self.reader(for: name)
        var generator = SplitMix64(seed: NetworkFill.fnv1a64(name))
        for _ in 0..<50 {
            var copy = data
            let index = Int.random(in: 0..<data.count, using: &generator)
            copy[index] ^= UInt8.random(in: 1...255, using: &generator)
            do {
                _ = try read(copy)
            } catch is WeightFileError {
            } catch {
                Issue.record("\(name) with byte \(index) flipped: unexpected error \(error)")
            }
        }
    }

    @Test func emptyAndGarbageFilesAreErrors() {
        var generator = SplitMix64(seed: 42)
        let garbage = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
        for (label, data) in [("empty", Data()), ("garbage", garbage), ("zip magic only", Data([0x50, 0x4B, 0x03, 0x04]))] {
            #expect(throws: WeightFileError.self, "\(label)") { try PyTorchStateDict.read(data: data, file: label) }
            #expect(throws: WeightFileError.self, "\(label)") { try MXNetParams.read(data: data, file: label) }
        }
    }

    // MARK: Hand-built legacy files: views, bounds and limits

    /// A legacy-format file holding one float32 storage and tensors viewing it.
    static func legacyFile(storage: [Float], tensors: [(name: String, offset: Int, size: [Int], stride: [Int])]) -> Data {
        func le(_ value: Int, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        func unicode(_ text: String) -> [UInt8] { [0x58] + le(text.utf8.count, 4) + Array(text.utf8) }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        func int(_ value: Int) -> [UInt8] { Int32(exactly: value) != nil ? [0x4A] + le(value, 4) : [0x8A, 8] + le(value, 8) }
        func tuple(_ items: [[UInt8]]) -> [UInt8] { [0x28] + items.joined() + [0x74] }
        func pickle(_ body: [UInt8]) -> [UInt8] { [0x80, 0x02] + body + [0x2E] }
        let magic: [UInt8] = [0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        var main: [UInt8] = [0x7D, 0x28]  // EMPTY_DICT MARK
        for tensor in tensors {
            let id = tuple([unicode("storage"), global("torch", "FloatStorage"), unicode("0"), unicode("cpu"), int(storage.count)])
            let hooks = global("collections", "OrderedDict") + [0x29, 0x52]
            let arguments = tuple([id + [0x51], int(tensor.offset), tuple(tensor.size.map(int)), tuple(tensor.stride.map(int)),
                                   [0x89], hooks])
            main += unicode(tensor.name) + global("torch._utils", "_rebuild_tensor_v2") + arguments + [0x52]
        }
        main += [0x75]  // SETITEMS
        var file = pickle(magic) + pickle([0x4D, 0xE9, 0x03]) + pickle([0x7D]) + pickle(main)
            + pickle([0x5D, 0x28] + unicode("0") + [0x65])
        file += le(storage.count, 8)
        for value in storage { file += le(Int(value.bitPattern), 4) }
        return Data(file)
    }

    @Test func stridedViewsOfOneStorage() throws {
        let data = Self.legacyFile(storage: [0, 1, 2, 3, 4, 5], tensors: [
            ("matrix", 0, [2, 3], [3, 1]),
            ("transposed", 0, [3, 2], [1, 3]),
            ("column", 1, [2], [3]),
            ("expanded", 5, [2, 2], [0, 0]),
            ("scalar", 4, [], []),
            ("empty", 6, [0, 4], [4, 1]),
            ("unit axis", 2, [1, 2], [Int.max, 1]),  // a stride on an extent-1 axis is never applied
        ])
        let read = try PyTorchStateDict.read(data: data, file: "views.pth")
        #expect(read["matrix"]?.scalars == [0, 1, 2, 3, 4, 5])
        #expect(read["transposed"]?.scalars == [0, 3, 1, 4, 2, 5])
        #expect(read["column"]?.scalars == [1, 4])
        #expect(read["expanded"]?.scalars == [5, 5, 5, 5])
        #expect(read["scalar"]?.scalars == [4])
        #expect(read["empty"]?.shape == [0, 4])
        #expect(read["unit axis"]?.scalars == [2, 3])
    }

    @Test func viewsOutsideTheirStorageAreErrors() {
        for (label, offset, size, stride) in [("past the end", 4, [3], [1]), ("stride past the end", 0, [2, 2], [5, 1]),
                                              ("absurd size", 0, [1 << 30, 1 << 30], [0, 0])] {
            let data = Self.legacyFile(storage: [0, 1, 2, 3, 4, 5], tensors: [("w", offset, size, stride)])
            #expect(throws: WeightFileError.self, "\(label)") { try PyTorchStateDict.read(data: data, file: label) }
        }
    }

    @Test func hostilePicklesAreBoundedErrors() {
        let cases: [(String, [UInt8])] = [
            ("huge string length", [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0x61]),
            ("huge bytes8 length", [0x80, 0x04, 0x8E] + [UInt8](repeating: 0xFF, count: 8)),
            ("memo never stored", [0x80, 0x02, 0x6A, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E]),
            ("stack bomb", [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x32, count: 1 << 21) + [0x2E]),
            ("nested tuples", [0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 1 << 20) + [0x2E]),
            ("no STOP", [0x80, 0x02, 0x7D]),
            ("stack underflow", [0x80, 0x02, 0x73, 0x2E]),
            ("huge integer", [0x80, 0x02, 0x8B, 0x00, 0x00, 0x01, 0x00] + [UInt8](repeating: 1, count: 65536) + [0x2E]),
        ]
        for (label, bytes) in cases {
            #expect(throws: WeightFileError.self, "\(label)") { try PyTorchStateDict.read(data: Data(bytes), file: label) }
        }
    }

    @Test func zipBombLimitIsAnError() throws {
        let data = try Data(contentsOf: Self.url("sample_zip.pth"))
        #expect(throws: WeightFileError.self) { try readZipEntries(data, file: "bomb.pth", limit: 1000) }
        #expect(try readZipEntries(data, file: "ok.pth").keys.contains { $0.hasSuffix("/data.pkl") })
    }
}
