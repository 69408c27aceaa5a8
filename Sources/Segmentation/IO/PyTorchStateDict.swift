import Foundation

/// PyTorch checkpoints written by `torch.save`, read without Python and
/// without executing anything (see `Unpickler`):
///
/// - **zip format** (torch ≥ 1.6): a zip holding `<archive>/data.pkl` (the
///   pickled object), `<archive>/data/<key>` (each storage's raw
///   little-endian bytes) and `<archive>/byteorder`; `<archive>` varies.
/// - **legacy format** (`_use_new_zipfile_serialization=False`): five
///   pickles back to back — magic number, protocol version 1001, sys_info,
///   the object, the list of storage keys — then for each key an int64
///   element count and the storage's raw bytes.
///
/// Storages are referenced from the pickle by persistent ids; tensors are
/// strided views of them (`_rebuild_tensor_v2`), so shared storages, storage
/// offsets and non-contiguous strides are honoured. Every tensor is
/// converted to Float32.
///
/// The object may be a state dict, or a checkpoint dict holding it under
/// `"state_dict"` or `"model"`. The result is its tensor leaves under their
/// original names (nested dicts are joined with "."); other leaves are
/// skipped. Any global outside the state-dict allow-list is refused with
/// `WeightFileError.forbiddenGlobal`; truncated or corrupt files are
/// `WeightFileError.malformed`.
public enum PyTorchStateDict {
    /// Elements that views may materialise beyond the storages' own total
    /// (a transposed copy of another entry counts twice); caps what a hostile
    /// file of zero-stride views could allocate.
    static let extraElementBudget = 1 << 24

    /// The legacy format's first pickle: the integer 0x1950a86a20f9469cfc6c.
    static let legacyMagic = PickleValue.bigInt([0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19])
    static let legacyProtocolVersion = 1001

    public static func read(contentsOf url: URL) throws -> [String: Tensor] {
        let data = try WeightFileError.contents(of: url)
        return try read(data: data, file: url.path)
    }

    public static func read(data: Data, file: String = "<memory>") throws -> [String: Tensor] {
        if data.starts(with: [0x50, 0x4B]) {  // "PK": a zip archive
            return try readZip(data, file: file)
        }
        return try readLegacy(data, file: file)
    }

    // MARK: - Zip format

    private static func readZip(_ data: Data, file: String) throws -> [String: Tensor] {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        let entries = try readZipEntries(data, file: file)
        let pickles = entries.keys.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1] == "data.pkl"
        }
        guard pickles.count == 1, let pickleName = pickles.first, let pickleData = entries[pickleName] else {
            throw fail(pickles.isEmpty ? "the zip has no '<archive>/data.pkl' entry: not a PyTorch checkpoint"
                                       : "the zip has several '<archive>/data.pkl' entries: \(pickles.sorted())")
        }
        let prefix = String(pickleName.dropLast("/data.pkl".count))
        if let order = entries["\(prefix)/byteorder"] {
            let text = String(decoding: order, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text == "little" else { throw fail("'\(prefix)/byteorder' is '\(text)'; only little-endian checkpoints are supported") }
        }
        let (pickle, _) = try Unpickler.load(pickleData, file: file, part: pickleName)
        return try tensors(of: pickle, file: file) { reference in
            let name = "\(prefix)/data/\(reference.key)"
            guard let bytes = entries[name] else { throw fail("storage entry '\(name)' is missing") }
            return bytes
        }
    }

    // MARK: - Legacy format

    private static func readLegacy(_ data: Data, file: String) throws -> [String: Tensor] {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        guard !data.isEmpty else { throw fail("the file is empty") }
        let (magic, afterMagic) = try Unpickler.load(data, file: file, part: "first pickle")
        guard magic.root == legacyMagic else {
            throw fail("neither a zip archive nor a legacy torch.save file (no PyTorch magic number): not a PyTorch checkpoint")
        }
        let (version, afterVersion) = try Unpickler.load(data, from: afterMagic, file: file, part: "protocol version")
        guard version.root == .int(legacyProtocolVersion) else {
            throw fail("legacy protocol version \(version.root) is not supported (\(legacyProtocolVersion) is)")
        }
        let (systemInfo, afterSystemInfo) = try Unpickler.load(data, from: afterVersion, file: file, part: "sys_info")
        guard let information = systemInfo.dictionary(systemInfo.root) else { throw fail("sys_info is not a dict") }
        if let littleEndian = information[.string("little_endian")], littleEndian != .bool(true) {
            throw fail("the checkpoint was written on a big-endian machine, which is not supported")
        }
        let (object, afterObject) = try Unpickler.load(data, from: afterSystemInfo, file: file, part: "main pickle")
        let (keyList, afterKeys) = try Unpickler.load(data, from: afterObject, file: file, part: "storage key list")
        guard let keyValues = keyList.sequence(keyList.root) else { throw fail("the storage key list is not a list") }

        // Element type and count of each storage, as the persistent ids declare them.
        var declared: [String: (type: StoredElementType, count: Int)] = [:]
        for reference in object.storages {
            if let known = declared[reference.key], known.type != reference.dataType || known.count != reference.count {
                throw fail("storage '\(reference.key)' is declared both as \(known.count) × \(known.type) and \(reference.count) × \(reference.dataType)")
            }
            declared[reference.key] = (reference.dataType, reference.count)
        }
        var storages: [String: Data] = [:]
        var position = afterKeys
        for value in keyValues {
            let key: String
            switch value {
            case let .string(text): key = text
            case let .int(number): key = String(number)
            default: throw fail("the storage key list holds \(value)")
            }
            guard let (type, count) = declared[key] else { throw fail("storage '\(key)' is listed but no tensor uses it") }
            guard storages[key] == nil else { throw fail("storage '\(key)' is listed twice") }
            guard data.count - position >= 8 else { throw fail("storage '\(key)' is missing (truncated at byte \(data.count))") }
            let start = data.startIndex + position
            let stored = data[start..<(start + 8)].withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
            guard stored == Int64(count) else {
                throw fail("storage '\(key)' holds \(stored) elements, but its persistent id says \(count)")
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: type.size)
            guard !overflow, byteCount <= data.count - position - 8 else {
                throw fail("storage '\(key)' needs \(count) × \(type.size) bytes, beyond the end of the file (truncated?)")
            }
            storages[key] = data[(start + 8)..<(start + 8 + byteCount)]
            position += 8 + byteCount
        }
        return try tensors(of: object, file: file) { reference in
            guard let bytes = storages[reference.key] else { throw fail("storage '\(reference.key)' is not in the storage key list") }
            return bytes
        }
    }

    // MARK: - From pickle to tensors

    /// The tensor leaves of the state dict in `pickle`; `storageBytes` gives
    /// a storage's raw bytes, checked here against its declared size.
    private static func tensors(
        of pickle: Unpickled, file: String, storageBytes: (PickleStorageReference) throws -> Data
    ) throws -> [String: Tensor] {
        func fail(_ reason: String) -> WeightFileError { .malformed(file: file, reason: reason) }
        let leaves = try tensorLeaves(of: pickle, file: file)
        // Every storage the pickle names, checked against its declared size.
        var storages: [String: (bytes: Data, type: StoredElementType, count: Int)] = [:]
        var storageTotal = 0
        for storage in pickle.storages {
            if let known = storages[storage.key] {
                guard known.type == storage.dataType, known.count == storage.count else {
                    throw fail("storage '\(storage.key)' is declared both as \(known.count) × \(known.type) "
                        + "and \(storage.count) × \(storage.dataType)")
                }
                continue
            }
            let bytes = try storageBytes(storage)
            let (byteCount, overflow) = storage.count.multipliedReportingOverflow(by: storage.dataType.size)
            guard !overflow, bytes.count == byteCount else {
                throw fail("storage '\(storage.key)' holds \(bytes.count) bytes, but \(storage.count) × \(storage.dataType) needs "
                    + (overflow ? "more than exist" : "\(byteCount)"))
            }
            storages[storage.key] = (bytes, storage.dataType, storage.count)
            storageTotal += storage.count  // at most the file size
        }
        var budget = 2 * storageTotal + extraElementBudget
        var result: [String: Tensor] = [:]
        for (name, index) in leaves {
            let tensor = pickle.tensors[index]
            let storage = pickle.storages[tensor.storage]
            let bytes = storages[storage.key]!.bytes
            // A stride on an axis of extent 1 is never applied; zero it so a
            // hostile value cannot overflow while walking the view.
            let stride = zip(tensor.size, tensor.stride).map { $0 <= 1 ? 0 : $1 }
            let base = storage.view?.offset ?? 0
            let available = storage.view?.count ?? storage.count
            var count = 1
            for dimension in tensor.size {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= 1 << 40 else { throw fail("tensor '\(name)' has an absurd size \(tensor.size)") }
                count = product
            }
            if count > 0 {
                // Index of the view's last element; strides are non-negative.
                var last = tensor.offset
                for (dimension, stride) in zip(tensor.size, tensor.stride) {
                    let (step, overflowA) = (dimension - 1).multipliedReportingOverflow(by: stride)
                    let (sum, overflowB) = last.addingReportingOverflow(step)
                    guard !overflowA, !overflowB else { throw fail("tensor '\(name)' has absurd strides \(tensor.stride)") }
                    last = sum
                }
                guard last < available else {
                    throw fail("tensor '\(name)' (offset \(tensor.offset), size \(tensor.size), stride \(tensor.stride)) "
                        + "reaches element \(last) of a storage of \(available)")
                }
            }
            guard count <= budget else {
                throw fail("tensor '\(name)' would exceed the element budget (views repeat their storages too often)")
            }
            budget -= count
            result[name] = Tensor(shape: Shape(tensor.size)) { output in
                bytes.withUnsafeBytes { raw in
                    gatherElements(raw, type: storage.dataType, start: base + tensor.offset, size: tensor.size,
                                   stride: stride, into: output)
                }
            }
        }
        return result
    }

    /// The state dict's tensors as (name, tensor index), after choosing the
    /// state dict inside a checkpoint dict.
    private static func tensorLeaves(of pickle: Unpickled, file: String) throws -> [(String, Int)] {
        guard let top = pickle.dictionary(pickle.root) else {
            throw WeightFileError.malformed(
                file: file, reason: "the pickled object is not a dict (a state dict, or a checkpoint holding one)")
        }
        var root = pickle.root
        for key in ["state_dict", "model"] {
            if let inner = top[.string(key)], pickle.dictionary(inner) != nil {
                root = inner
                break
            }
        }
        var leaves: [(String, Int)] = []
        var names = Set<String>()
        var visited = Set<Int>()
        var pending: [(value: PickleValue, prefix: String, depth: Int)] = [(root, "", 0)]
        while let (value, prefix, depth) = pending.popLast() {
            guard case let .dict(index) = value, depth <= 16, visited.insert(index).inserted else { continue }
            let dictionary = pickle.dicts[index]
            for (key, item) in zip(dictionary.keys, dictionary.values) {
                let name: String
                switch key {
                case let .string(text): name = prefix + text
                case let .int(number): name = prefix + String(number)
                default: continue
                }
                switch item {
                case let .tensor(tensor):
                    guard names.insert(name).inserted else {
                        throw WeightFileError.malformed(file: file, reason: "tensor name '\(name)' appears twice")
                    }
                    leaves.append((name, tensor))
                case .dict:
                    pending.append((item, name + ".", depth + 1))
                default:
                    continue
                }
            }
        }
        return leaves
    }
}

// MARK: - Element conversion (shared with MXNetParams)

/// Copies the strided view `start`, `size`, `stride` (in elements) of the
/// storage `raw` into `output`, converting to Float32. The caller has
/// checked that every element lies inside the storage.
func gatherElements(
    _ raw: UnsafeRawBufferPointer, type: StoredElementType, start: Int, size: [Int], stride: [Int],
    into output: UnsafeMutableBufferPointer<Float>
) {
    guard !output.isEmpty else { return }
    do {
        let load: (Int) -> Float
        switch type {
        case .float32: load = { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) }
        case .float64: load = { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian)) }
        case .float16: load = { Float(halfBits: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        case .bfloat16:
            load = { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) << 16) }
        case .int64: load = { Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
        case .int32: load = { Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .int16: load = { Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .int8: load = { Float(Int8(bitPattern: raw[$0])) }
        case .uint8: load = { Float(raw[$0]) }
        case .bool: load = { raw[$0] != 0 ? 1 : 0 }
        }
        let rank = size.count
        guard rank > 0 else {
            output[0] = load(start)
            return
        }
        // The innermost axis as a loop, the outer axes as an odometer.
        let innerCount = size[rank - 1], innerStride = stride[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var base = start
        var written = 0
        while written < output.count {
            var element = base
            for _ in 0..<innerCount {
                output[written] = load(element)
                written += 1
                element += innerStride
            }
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                base += stride[axis]
                if index[axis] < size[axis] { break }
                base -= stride[axis] * size[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}