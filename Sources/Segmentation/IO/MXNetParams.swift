import Foundation

/// MXNet NDArray lists, the `.params` files of `mx.nd.save` and Gluon's
/// `save_parameters` (all integers little-endian):
///
///     u64 0x112 (list magic), u64 reserved, u64 N
///     N arrays:
///         u32 magic: 0xF993FAC9 (V2) or 0xF993FACA (V3): i32 storage type (0 dense), then the shape
///                    0xF993FAC8 (V1): the shape
///                    anything else (legacy): it is ndim, followed by ndim u32 dimensions
///         shape      i32 ndim, ndim × i64 dimensions; ndim 0 (V3: −1) is an empty "none" array
///         i32 dev_type, i32 dev_id, i32 type_flag
///         the data   row-major, little-endian, element count × element size bytes
///     u64 K (0 or N) names, each u64 length + UTF-8 bytes
///
/// Type flags 0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8,
/// 6 int64, 7 bool and 12 bfloat16 are read, converted to Float32. Names lose
/// Gluon's `arg:` / `aux:` prefixes; a list saved without names is keyed
/// "0", "1", …; empty arrays are skipped. Every length is checked against
/// the remaining bytes, so a truncated or hostile file is an error.
public enum MXNetParams {
    static let listMagic: UInt64 = 0x112
    static let maximumRank = 32

    public static func read(contentsOf url: URL) throws -> [String: Tensor] {
        let data = try WeightFileError.contents(of: url)
        return try read(data: data, file: url.path)
    }

    public static func read(data: Data, file: String = "<memory>") throws -> [String: Tensor] {
        try data.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw, file: file)
            return try reader.readList()
        }
    }

    /// One array of the list, located but not yet converted.
    private struct ArrayRecord {
        var shape: [Int]
        var type: StoredElementType
        var data: Range<Int>
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let file: String
        var position = 0
        /// What is being read, for error messages ("array 3 of 4").
        var context = "the header"

        init(bytes: UnsafeRawBufferPointer, file: String) {
            self.bytes = bytes
            self.file = file
        }

        func fail(_ reason: String) -> WeightFileError {
            .malformed(file: file, reason: "\(context): \(reason)")
        }

        var remaining: Int { bytes.count - position }

        mutating func skip(_ count: Int) throws -> Range<Int> {
            guard count >= 0, count <= remaining else {
                throw fail("needs \(count) bytes at offset \(position), but only \(remaining) remain (truncated?)")
            }
            defer { position += count }
            return position..<(position + count)
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let range = try skip(MemoryLayout<T>.size)
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: range.lowerBound, as: T.self))
        }

        /// A count of items of at least `itemSize` bytes each, which must fit in the rest of the file.
        mutating func count(itemSize: Int, what: String) throws -> Int {
            let value = try integer(UInt64.self)
            guard value <= UInt64(remaining / itemSize) else {
                throw fail("\(value) \(what) cannot fit in the \(remaining) remaining bytes")
            }
            return Int(value)
        }

        mutating func readList() throws -> [String: Tensor] {
            guard bytes.count >= 24 else { throw fail("the file is \(bytes.count) bytes, shorter than the 24-byte header") }
            let magic = try integer(UInt64.self)
            guard magic == MXNetParams.listMagic else {
                throw fail(String(format: "magic number 0x%llX is not 0x112: not an MXNet .params file", magic))
            }
            _ = try integer(UInt64.self)  // reserved
            let arrayCount = try count(itemSize: 4, what: "arrays")
            var records: [ArrayRecord?] = []
            for index in 0..<arrayCount {
                context = "array \(index) of \(arrayCount)"
                records.append(try readArray())
            }
            context = "the name list"
            let nameCount = try count(itemSize: 8, what: "names")
            guard nameCount == 0 || nameCount == arrayCount else {
                throw fail("\(nameCount) names for \(arrayCount) arrays")
            }
            var names: [String] = []
            for index in 0..<nameCount {
                let range = try skip(try count(itemSize: 1, what: "name bytes"))
                guard let name = String(validating: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
                    throw fail("name \(index) is not UTF-8")
                }
                names.append(name)
            }
            var result: [String: Tensor] = [:]
            for (index, record) in records.enumerated() {
                guard let record else { continue }
                var name = nameCount == 0 ? String(index) : names[index]
                if name.hasPrefix("arg:") || name.hasPrefix("aux:") { name.removeFirst(4) }
                guard result[name] == nil else {
                    throw WeightFileError.malformed(file: file, reason: "tensor name '\(name)' appears twice")
                }
                let data = UnsafeRawBufferPointer(rebasing: bytes[record.data])
                result[name] = Tensor(shape: Shape(record.shape)) { output in
                    gatherElements(data, type: record.type, start: 0, size: [output.count], stride: [1], into: output)
                }
            }
            return result
        }

        /// One NDArray; nil for an empty ("none") array.
        mutating func readArray() throws -> ArrayRecord? {
            let magic = try integer(UInt32.self)
            var shape: [Int]?
            switch magic {
            case 0xF993_FAC9, 0xF993_FACA:  // V2, V3
                let storageType = try integer(Int32.self)
                guard storageType == 0 else {
                    throw fail("storage type \(storageType) is sparse; only dense arrays are supported")
                }
                shape = try readShape(noneIsMinusOne: magic == 0xF993_FACA)
            case 0xF993_FAC8:  // V1
                shape = try readShape(noneIsMinusOne: false)
            default:  // legacy: the word is ndim, the dimensions are u32
                guard magic <= UInt32(MXNetParams.maximumRank) else {
                    throw fail(String(format: "unknown array magic 0x%08X", magic))
                }
                if magic > 0 {
                    shape = try (0..<Int(magic)).map { _ in Int(try integer(UInt32.self)) }
                }
            }
            guard let shape else { return nil }
            _ = try integer(Int32.self)  // dev_type
            _ = try integer(Int32.self)  // dev_id
            let typeFlag = try integer(Int32.self)
            let type: StoredElementType
            switch typeFlag {
            case 0: type = .float32
            case 1: type = .float64
            case 2: type = .float16
            case 3: type = .uint8
            case 4: type = .int32
            case 5: type = .int8
            case 6: type = .int64
            case 7: type = .bool
            case 12: type = .bfloat16
            default: throw fail("data type flag \(typeFlag) is not supported")
            }
            var count = 1
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= remaining else {
                    throw fail("shape \(shape) needs more data than the \(remaining) remaining bytes")
                }
                count = product
            }
            return ArrayRecord(shape: shape, type: type, data: try skip(count * type.size))
        }

        /// i32 ndim then ndim i64 dimensions; nil for a "none" array
        /// (ndim 0, or −1 in V3 where ndim 0 is a scalar).
        mutating func readShape(noneIsMinusOne: Bool) throws -> [Int]? {
            let rank = try integer(Int32.self)
            if noneIsMinusOne ? rank == -1 : rank == 0 { return nil }
            guard rank >= 0, rank <= MXNetParams.maximumRank else { throw fail("rank \(rank) is invalid") }
            return try (0..<Int(rank)).map { _ in
                let dimension = try integer(Int64.self)
                guard dimension >= 0, dimension <= Int64(bytes.count) else {
                    throw fail("dimension \(dimension) is invalid")
                }
                return Int(dimension)
            }
        }
    }
}
