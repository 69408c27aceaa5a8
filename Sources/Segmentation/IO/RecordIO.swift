import Foundation

/// MXNet's RecordIO framing (dmlc-core `recordio.h`), as SageMaker's
/// built-in algorithms use it for `application/x-recordio-protobuf`.
///
/// A record is: UInt32 magic 0xCED7230A, UInt32 `cflag << 29 | length`,
/// `length` payload bytes, zero padding to a multiple of 4; all
/// little-endian. We write every record whole (cflag 0, as the SageMaker
/// Python SDK does). Reading also accepts MXNet's split records (cflag
/// 1 = first part, 2 = middle, 3 = last; the parts are joined by the magic
/// word that the writer cut out).
public enum RecordIO {
    public static let magic: UInt32 = 0xCED7_230A
    /// The length field has 29 bits.
    public static let maximumLength = (1 << 29) - 1

    /// `payload` framed as one record.
    public static func frame(_ payload: Data) throws -> Data {
        guard payload.count <= maximumLength else { throw RecordIOError.recordTooLarge(bytes: payload.count) }
        var out = Data(capacity: 8 + payload.count + 3)
        appendUInt32(magic, to: &out)
        appendUInt32(UInt32(payload.count), to: &out)
        out.append(payload)
        out.append(contentsOf: [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4))
        return out
    }

    /// The payloads of every record in `data`; `file` names the source in errors.
    public static func records(in data: Data, file: String) throws -> [Data] {
        let bytes = [UInt8](data)
        var records: [Data] = []
        var pending: Data?
        var offset = 0
        func uint32(at i: Int) -> UInt32 {
            UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
        }
        while offset < bytes.count {
            guard offset + 8 <= bytes.count else {
                throw RecordIOError.malformed(file: file, offset: offset, reason: "truncated record header")
            }
            guard uint32(at: offset) == magic else {
                throw RecordIOError.malformed(
                    file: file, offset: offset,
                    reason: String(format: "expected the magic word 0xCED7230A, found 0x%08X", uint32(at: offset)))
            }
            let field = uint32(at: offset + 4)
            let (flag, length) = (field >> 29, Int(field & UInt32(maximumLength)))
            let start = offset + 8
            guard start + length <= bytes.count else {
                throw RecordIOError.malformed(file: file, offset: offset,
                                              reason: "record of \(length) bytes runs past the end (\(bytes.count - start) left)")
            }
            let part = Data(bytes[start..<start + length])
            switch (flag, pending) {
            case (0, nil): records.append(part)
            case (1, nil): pending = part
            case (2, var joined?):
                appendUInt32(magic, to: &joined)
                joined.append(part)
                pending = joined
            case (3, var joined?):
                appendUInt32(magic, to: &joined)
                joined.append(part)
                records.append(joined)
                pending = nil
            default:
                throw RecordIOError.malformed(file: file, offset: offset,
                                              reason: "continuation flag \(flag) out of sequence")
            }
            offset = start + length + (4 - length % 4) % 4
            guard offset <= bytes.count else {
                throw RecordIOError.malformed(file: file, offset: start + length, reason: "the record's padding to 4 bytes is cut off")
            }
        }
        guard pending == nil else {
            throw RecordIOError.malformed(file: file, offset: offset, reason: "a split record has no last part")
        }
        return records
    }

    private static func appendUInt32(_ value: UInt32, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }
}

public enum RecordIOError: Error, CustomStringConvertible, Equatable {
    case recordTooLarge(bytes: Int)
    case malformed(file: String, offset: Int, reason: String)
    case unexpectedContent(file: String, reason: String)

    public var description: String {
        switch self {
        case .recordTooLarge(let bytes):
            return "a RecordIO record holds at most \(RecordIO.maximumLength) bytes, this one needs \(bytes); "
                + "ask for image/png or send a smaller image"
        case let .malformed(file, offset, reason): return "\(file): not a valid RecordIO file at byte \(offset): \(reason)"
        case let .unexpectedContent(file, reason): return "\(file): \(reason)"
        }
    }
}
