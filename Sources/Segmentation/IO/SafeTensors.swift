import Foundation

/// The safetensors format, the native weights format (SPEC §7):
///
///     u64 little-endian  N, the header length in bytes
///     N bytes            JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
///                               "__metadata__": {"<key>": "<string>", …}}
///     the data buffer    tensors at [begin, end) relative to the buffer, little-endian, row-major
///
/// Reading accepts F32, F16, BF16, F64, I64 and I32 (converted to Float32);
/// writing produces F32. Every offset and shape is checked against the file
/// size before any tensor is built, so a truncated or hostile file is an error.
public struct SafeTensorsFile: Sendable {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Header larger than this is refused (the format's reference reader uses 100 MB).
    static let maximumHeaderLength = 100_000_000

    public init(contentsOf url: URL) throws {
        let data = try WeightFileError.contents(of: url)
        try self.init(data: data, file: url.path)
    }

    public init(data: Data, file: String = "<memory>") throws {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(Self.maximumHeaderLength), Int(headerLength) <= data.count - 8 else {
            throw fail("header length \(headerLength) exceeds the file (\(data.count) bytes)")
        }
        let headerStart = data.startIndex + 8
        let header = data[headerStart..<(headerStart + Int(headerLength))]
        guard let object = try? JSONSerialization.jsonObject(with: header), let entries = object as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let bufferStart = headerStart + Int(headerLength)
        let bufferLength = data.endIndex - bufferStart
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (key, item) in map {
                    guard let text = item as? String else { throw fail("__metadata__ value for '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shapeValues = entry["shape"] as? [Any], let offsetValues = entry["data_offsets"] as? [Any],
                offsetValues.count == 2
            else { throw fail("entry '\(name)' lacks dtype, shape or data_offsets") }
            let shape = try shapeValues.map { item -> Int in
                guard let number = item as? NSNumber, let dimension = Int(exactly: number.doubleValue), dimension >= 0,
                    dimension < 1 << 31
                else { throw fail("entry '\(name)' has an invalid shape \(shapeValues)") }
                return dimension
            }
            let offsets = try offsetValues.map { item -> Int in
                guard let number = item as? NSNumber, let offset = Int(exactly: number.doubleValue), offset >= 0 else {
                    throw fail("entry '\(name)' has invalid data_offsets \(offsetValues)")
                }
                return offset
            }
            guard let size = Self.elementSize(dtype) else {
                throw WeightFileError.unsupportedDataType(file: file, key: name, dataType: dtype)
            }
            var count = 1
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow, product < 1 << 40 else { throw fail("entry '\(name)' has an absurd shape \(shape)") }
                count = product
            }
            guard offsets[0] <= offsets[1], offsets[1] <= bufferLength else {
                throw fail("entry '\(name)' data_offsets \(offsets) exceed the data buffer (\(bufferLength) bytes)")
            }
            guard offsets[1] - offsets[0] == count * size else {
                throw fail("entry '\(name)' holds \(offsets[1] - offsets[0]) bytes, but \(dtype) \(shape) needs \(count * size)")
            }
            let bytes = data[(bufferStart + offsets[0])..<(bufferStart + offsets[1])]
            tensors[name] = Self.decode(bytes, dtype: dtype, shape: Shape(shape), count: count)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32": return 4
        case "F16", "BF16": return 2
        case "F64", "I64": return 8
        default: return nil
        }
    }

    private static func decode(_ bytes: Data, dtype: String, shape: Shape, count: Int) -> Tensor {
        Tensor(shape: shape) { output in
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    switch dtype {
                    case "F32": output[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                    case "I32": output[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                    case "F64": output[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
                    case "I64": output[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                    case "F16": output[i] = Float(halfBits: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
                    default /* BF16 */: output[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16)
                    }
                }
            }
        }
    }

    /// The serialized bytes: tensors sorted by name, F32, header padded with
    /// spaces to a multiple of 8 bytes so the data buffer is aligned.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let tensor = tensors[name]!
            header[name] = ["dtype": "F32", "shape": tensor.shape.dimensions, "data_offsets": [offset, offset + 4 * tensor.elementCount]]
            offset += 4 * tensor.elementCount
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var result = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { result.append(contentsOf: $0) }
        result.append(headerBytes)
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { buffer in
                // x86_64 and arm64 are little-endian: the Float32 bytes are already in file order.
                result.append(UnsafeBufferPointer(start: UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                                  count: buffer.count * 4))
            }
        }
        return result
    }

    /// Writes the file atomically (temporary file, then rename).
    public func write(to url: URL) throws {
        try writeAtomically(serialized(), to: url)
    }

    /// The tensor named `key` with the expected shape, or an error naming both.
    public func tensor(_ key: String, shape: Shape, file: String) throws -> Tensor {
        guard let tensor = tensors[key] else { throw WeightFileError.missingTensor(file: file, key: key) }
        guard tensor.shape == shape else {
            throw WeightFileError.shapeMismatch(file: file, key: key, expected: shape.dimensions, found: tensor.shape.dimensions)
        }
        return tensor
    }
}

extension Float {
    /// IEEE 754 binary16 → binary32 (exact).
    init(halfBits bits: UInt16) {
        let sign = UInt32(bits >> 15) << 31
        let exponent = Int((bits >> 10) & 0x1F)
        let fraction = UInt32(bits & 0x3FF)
        if exponent == 0x1F {
            self = Float(bitPattern: sign | 0x7F80_0000 | (fraction << 13))
        } else if exponent == 0 {
            // Subnormal or zero: fraction · 2⁻²⁴.
            let magnitude = Float(fraction) * 0x1p-24
            self = sign != 0 ? -magnitude : magnitude
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (fraction << 13))
        }
    }
}
