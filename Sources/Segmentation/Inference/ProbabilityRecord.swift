import Foundation
import SwiftProtobuf

/// The `application/x-recordio-protobuf` answer of SageMaker's semantic
/// segmentation (SPEC §8): one RecordIO record holding an `aialgs.data.Record`
/// whose `features["target"]` is a Float32Tensor of softmax probabilities,
/// row-major [1, C, H, W], and whose `features["shape"]` is an Int32Tensor
/// [1, C, H, W].
public enum ProbabilityRecord {
    /// The content type served, and the alias accepted for it.
    public static let contentType = "application/x-recordio-protobuf"
    public static let contentTypeAlias = "application/x-protobuf"

    /// Throws `RecordIOError.recordTooLarge` when the probabilities of a
    /// `width` × `height` image over `classes` classes cannot fit in one
    /// RecordIO record (29-bit length), so a caller can refuse before running
    /// the network. Counts 4 bytes per value plus the message's framing.
    public static func checkFits(classes: Int, width: Int, height: Int) throws {
        let plane = width.multipliedReportingOverflow(by: height)
        let values = classes.multipliedReportingOverflow(by: plane.partialValue)
        let bytes = values.partialValue.multipliedReportingOverflow(by: 4)
        guard !plane.overflow, !values.overflow, !bytes.overflow, bytes.partialValue + 256 <= RecordIO.maximumLength else {
            throw RecordIOError.recordTooLarge(bytes: plane.overflow || values.overflow || bytes.overflow ? Int.max : bytes.partialValue + 256)
        }
    }

    /// The serialized record (RecordIO-framed) for [1, C, H, W] probabilities.
    public static func encode(probabilities: Tensor) throws -> Data {
        let s = probabilities.shape
        precondition(s.rank == 4 && s.batch == 1, "one image's [1, C, H, W] probabilities expected, got \(s)")
        var target = Aialgs_Data_Float32Tensor()
        target.values = probabilities.scalars
        var shape = Aialgs_Data_Int32Tensor()
        shape.values = [1, Int32(s.channels), Int32(s.height), Int32(s.width)]
        var record = Aialgs_Data_Record()
        record.features["target"] = Aialgs_Data_Value.with { $0.float32Tensor = target }
        record.features["shape"] = Aialgs_Data_Value.with { $0.int32Tensor = shape }
        return try RecordIO.frame(record.serializedData())
    }

    /// Reads back every record of a response: the probabilities, shaped
    /// [1, C, H, W] from `features["shape"]`. `file` names the source in errors.
    public static func decode(_ data: Data, file: String) throws -> [Tensor] {
        try RecordIO.records(in: data, file: file).enumerated().map { index, payload in
            func fail(_ reason: String) -> RecordIOError { .unexpectedContent(file: file, reason: "record \(index): \(reason)") }
            let record: Aialgs_Data_Record
            do {
                record = try Aialgs_Data_Record(serializedBytes: payload)
            } catch {
                throw fail("not an aialgs.data.Record protobuf (\(error))")
            }
            guard let target = record.features["target"], case .float32Tensor(let values)? = target.value else {
                throw fail("features[\"target\"] is missing or not a Float32Tensor")
            }
            guard let shapeValue = record.features["shape"], case .int32Tensor(let dims)? = shapeValue.value,
                  dims.values.count == 4, dims.values.allSatisfy({ $0 > 0 }) else {
                throw fail("features[\"shape\"] is missing or not four positive Int32 values")
            }
            let (count, overflow) = dims.values.reduce((1, false)) { partial, dimension in
                let product = partial.0.multipliedReportingOverflow(by: Int(dimension))
                return (product.partialValue, partial.1 || product.overflow)
            }
            guard !overflow, count == values.values.count else {
                throw fail("shape \(dims.values) does not match the \(values.values.count) values of target")
            }
            let shape = Shape(dims.values.map(Int.init))
            return Tensor(shape: shape, scalars: values.values)
        }
    }
}
