import Foundation
@testable import Segmentation
import Testing

@Suite("safetensors")
struct SafeTensorsTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripThroughAFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("w.safetensors")
        let file = SafeTensorsFile(
            tensors: ["backbone.conv1.weight": .sinusoid([4, 3, 3, 3], frequency: 0.3),
                      "head.bias": Tensor(shape: [5], scalars: [1, -2, .infinity, 0, -0.0]),
                      "empty": .zeros([0, 3])],
            metadata: ["format": "pt"])
        try file.write(to: url)
        let read = try SafeTensorsFile(contentsOf: url)
        #expect(read.metadata == ["format": "pt"])
        #expect(read.tensors.keys.sorted() == file.tensors.keys.sorted())
        for (key, tensor) in file.tensors { #expect(read.tensors[key] == tensor, "\(key)") }
        // no temporary file left behind by the atomic write
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["w.safetensors"])
    }

    @Test func headerIsAlignedAndSorted() throws {
        let data = try SafeTensorsFile(tensors: ["b": .zeros([1]), "a": .zeros([2])]).serialized()
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
        let header = String(decoding: data[8..<(8 + Int(headerLength))], as: UTF8.self)
        #expect(header.range(of: "\"a\"")!.lowerBound < header.range(of: "\"b\"")!.lowerBound)
        #expect(header.contains("\"data_offsets\":[0,8]"))
    }

    /// A hand-built file with the other data types a converted checkpoint may hold.
    @Test func readsOtherDataTypes() throws {
        func file(_ entries: [(String, String, [Int], [UInt8])]) -> Data {
            var header: [String: Any] = [:]
            var buffer = Data()
            for (name, dtype, shape, bytes) in entries {
                header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [buffer.count, buffer.count + bytes.count]]
                buffer.append(contentsOf: bytes)
            }
            let json = try! JSONSerialization.data(withJSONObject: header)
            var data = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
            return data + json + buffer
        }
        let data = file([
            ("half", "F16", [3], [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00]),     // 1, −2, 2⁻²⁴
            ("bf16", "BF16", [1], [0x80, 0x3F]),                             // 1
            ("i64", "I64", [1], [0x05, 0, 0, 0, 0, 0, 0, 0]),                // num_batches_tracked
            ("f64", "F64", [1], Array(withUnsafeBytes(of: 0.5.bitPattern.littleEndian) { Array($0) })),
        ])
        let read = try SafeTensorsFile(data: data)
        #expect(read.tensors["half"]!.scalars == [1, -2, 0x1p-24])
        #expect(read.tensors["bf16"]!.scalars == [1])
        #expect(read.tensors["i64"]!.scalars == [5])
        #expect(read.tensors["f64"]!.scalars == [0.5])
    }

    @Test func malformedFilesAreErrorsNamingTheProblem() throws {
        let good = try SafeTensorsFile(tensors: ["w": .sinusoid([2, 3], frequency: 0.5)]).serialized()
        var cases: [(String, Data)] = [
            ("empty", Data()),
            ("short header length", Data([1, 2, 3])),
            ("header past end", Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0]) + Data("{}".utf8)),
            ("not JSON", Data([4, 0, 0, 0, 0, 0, 0, 0]) + Data("nope".utf8)),
        ]
        // Truncated at every point past the header: data offsets no longer fit.
        for cut in stride(from: good.count - 1, through: 8, by: -3) {
            cases.append(("truncated at \(cut)", good.prefix(cut)))
        }
        for (label, data) in cases {
            #expect(throws: WeightFileError.self, "\(label)") { try SafeTensorsFile(data: data, file: "x.safetensors") }
        }
        let unsupported = try JSONSerialization.data(withJSONObject: ["w": ["dtype": "C64", "shape": [1], "data_offsets": [0, 8]]])
        var data = Data()
        withUnsafeBytes(of: UInt64(unsupported.count).littleEndian) { data.append(contentsOf: $0) }
        data += unsupported + Data(count: 8)
        #expect(throws: WeightFileError.unsupportedDataType(file: "x.safetensors", key: "w", dataType: "C64")) {
            try SafeTensorsFile(data: data, file: "x.safetensors")
        }
    }

    @Test func shapeMismatchNamesKeyAndShapes() throws {
        let file = SafeTensorsFile(tensors: ["head.conv.weight": .zeros([19, 512, 1, 1])])
        #expect(throws: WeightFileError.shapeMismatch(file: "m.safetensors", key: "head.conv.weight",
                                                      expected: [21, 512, 1, 1], found: [19, 512, 1, 1])) {
            try file.tensor("head.conv.weight", shape: [21, 512, 1, 1], file: "m.safetensors")
        }
        let message = WeightFileError.shapeMismatch(file: "m.safetensors", key: "k", expected: [2], found: [3]).description
        #expect(message.contains("m.safetensors") && message.contains("'k'") && message.contains("[3]") && message.contains("[2]"))
    }
}
