import Foundation
@testable import Segmentation
import Testing

@Suite("RecordIO")
struct RecordIOTests {
    @Test func framingIsMagicLengthPayloadAndPadding() throws {
        let framed = try RecordIO.frame(Data([1, 2, 3, 4, 5]))
        #expect([UInt8](framed) == [0x0A, 0x23, 0xD7, 0xCE, 5, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0])
        #expect(try RecordIO.frame(Data()).count == 8)
        #expect(try RecordIO.frame(Data([9, 9, 9, 9])).count == 12)
        let two = try RecordIO.frame(Data([7])) + RecordIO.frame(Data([8, 8, 8, 8, 8, 8]))
        #expect(try RecordIO.records(in: two, file: "two.rec") == [Data([7]), Data([8, 8, 8, 8, 8, 8])])
    }

    /// MXNet's writer splits a record where the payload holds the magic word
    /// (flags 1, 2, 3) and drops the word; the reader puts it back.
    @Test func splitRecordsAreJoinedWithTheMagicWord() throws {
        func part(_ flag: UInt32, _ bytes: [UInt8]) -> [UInt8] {
            let header = UInt32(flag << 29) | UInt32(bytes.count)
            let padding = [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
            return [0x0A, 0x23, 0xD7, 0xCE] + withUnsafeBytes(of: header.littleEndian, Array.init) + bytes + padding
        }
        let data = Data(part(1, [1, 2, 3, 4]) + part(2, [5, 6, 7, 8]) + part(3, [9]))
        let magic: [UInt8] = [0x0A, 0x23, 0xD7, 0xCE]
        #expect(try RecordIO.records(in: data, file: "split.rec") == [Data([1, 2, 3, 4] + magic + [5, 6, 7, 8] + magic + [9])])
        #expect(throws: RecordIOError.self) { try RecordIO.records(in: Data(part(3, [1])), file: "orphan.rec") }
        #expect(throws: RecordIOError.self) { try RecordIO.records(in: Data(part(1, [1])), file: "unfinished.rec") }
    }

    @Test func damagedFilesAreErrorsNamingTheFile() throws {
        let good = try RecordIO.frame(Data(repeating: 3, count: 10))
        // 18 bytes: 8 of header and 10 of payload, the 2 bytes of padding cut off.
        for length in [1, 7, 9, 17, 18] {
            #expect { try RecordIO.records(in: good.prefix(length), file: "cut.rec") } throws: { error in
                "\(error)".hasPrefix("cut.rec: not a valid RecordIO file")
            }
        }
        var badMagic = good
        badMagic[0] ^= 0xFF
        #expect { try RecordIO.records(in: badMagic, file: "magic.rec") } throws: { "\($0)".contains("magic word") }
    }

    /// Records written by the SageMaker SDK's record_pb2 and MXNet's writer
    /// (Fixtures/generate_recordio_fixture.py) read back with their shapes
    /// and values: our message definitions and framing agree with theirs.
    @Test func readsRecordsWrittenByTheSageMakerSDKAndMXNet() throws {
        let data = try Data(contentsOf: KernelFixtures.directory.appendingPathComponent("sdk_records.rec"))
        let tensors = try ProbabilityRecord.decode(data, file: "sdk_records.rec")
        #expect(tensors.map(\.shape) == [[1, 2, 3, 4], [1, 3, 1, 5]])
        for (k, tensor) in tensors.enumerated() {
            #expect(tensor.scalars == (0..<tensor.elementCount).map { Float($0 + 1) / 64 + Float(k) })
        }
        // Our encoding of the first tensor frames the same way (magic, length, padding).
        let ours = try ProbabilityRecord.encode(probabilities: tensors[0])
        #expect(ours.prefix(4) == data.prefix(4) && ours.count % 4 == 0)
    }

    @Test func recordsThatCannotFitAreRefusedBeforeTheNetworkRuns() throws {
        try ProbabilityRecord.checkFits(classes: 21, width: 480, height: 480)
        #expect(throws: RecordIOError.self) { try ProbabilityRecord.checkFits(classes: 21, width: 5000, height: 1300) }
        #expect(throws: RecordIOError.self) { try ProbabilityRecord.checkFits(classes: 2, width: Int.max / 2, height: 3) }
    }

    @Test func probabilityRecordsRoundTripAndRejectWrongContent() throws {
        var generator = SplitMix64(seed: 9)
        let probabilities = softmaxOverClasses(Tensor.uniform([1, 4, 3, 5], in: -3...3, using: &generator))
        let data = try ProbabilityRecord.encode(probabilities: probabilities)
        let decoded = try ProbabilityRecord.decode(data + data, file: "twice.rec")
        #expect(decoded.count == 2 && decoded.allSatisfy { $0.shape == [1, 4, 3, 5] && $0.scalars == probabilities.scalars })
        // A record whose payload is not a Record protobuf.
        #expect(throws: RecordIOError.self) { try ProbabilityRecord.decode(RecordIO.frame(Data([0xFF, 0xFF, 0xFF])), file: "junk.rec") }
        // A valid protobuf without the features.
        #expect { try ProbabilityRecord.decode(RecordIO.frame(Data()), file: "empty.rec") } throws: {
            "\($0)".contains("features[\"target\"]")
        }
    }
}
