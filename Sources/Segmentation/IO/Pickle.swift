import Foundation

/// A restricted unpickler for PyTorch state dicts: a small pickle virtual
/// machine that only ever *builds values*. It never imports, calls or
/// instantiates anything; the few globals a state dict needs (the ordered
/// dict, the tensor and parameter rebuilders, the storage classes) are
/// recognised by name and interpreted here, and any other global is refused
/// with `WeightFileError.forbiddenGlobal` before anything else happens.
///
/// Supported: the opcodes `torch.save` emits with pickle protocols 2 to 5
/// (see `Unpickler.step`). Every length is checked against the remaining
/// bytes before anything is allocated, and the number of operations and the
/// stack height are capped, so a hostile or corrupt pickle is an error, never
/// a crash or a runaway allocation.
///
/// Containers live in arenas owned by the result and are referred to by
/// index, so values are flat (no recursive enum to overflow the stack while
/// being destroyed) and lists and dicts keep Python's reference semantics
/// when the memo hands them out twice.
struct Unpickled {
    var root: PickleValue
    var tuples: [[PickleValue]] = []
    var lists: [[PickleValue]] = []
    var dicts: [PickleDictionary] = []
    var sets: [[PickleValue]] = []
    var storages: [PickleStorageReference] = []
    var tensors: [PickleTensorReference] = []

    init(root: PickleValue = .none) { self.root = root }

    /// The entries of the dict `value`, or nil if it is not a dict.
    func dictionary(_ value: PickleValue) -> PickleDictionary? {
        if case let .dict(index) = value { return dicts[index] }
        return nil
    }

    /// The items of the tuple or list `value`, or nil if it is neither.
    func sequence(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case let .tuple(index): return tuples[index]
        case let .list(index): return lists[index]
        default: return nil
        }
    }
}

/// A value built by the unpickler. Containers are indices into the arenas of
/// `Unpickled`; `storage` and `tensor` index its storage and tensor references.
enum PickleValue: Hashable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits: little-endian two's complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes(Data)
    case tuple(Int)
    case list(Int)
    case dict(Int)
    case set(Int)
    case global(PickleGlobal)
    case storage(Int)
    case tensor(Int)

    var string: String? {
        if case let .string(text) = self { return text }
        return nil
    }

    var int: Int? {
        if case let .int(number) = self { return number }
        return nil
    }
}

/// An insertion-ordered dict (Python dicts keep insertion order).
struct PickleDictionary {
    private(set) var keys: [PickleValue] = []
    private(set) var values: [PickleValue] = []
    private var index: [PickleValue: Int] = [:]

    subscript(key: PickleValue) -> PickleValue? {
        index[key].map { values[$0] }
    }

    mutating func set(_ value: PickleValue, for key: PickleValue) {
        if let position = index[key] {
            values[position] = value
        } else {
            index[key] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    var count: Int { keys.count }
}

/// The element type of a stored array (a PyTorch storage, an MXNet NDArray),
/// converted to Float32 on reading by `gatherElements`.
enum StoredElementType: String, Sendable {
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool

    var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The storage class named in a pickle (`FloatStorage` in module `torch`).
    init?(storageClass name: String) {
        switch name {
        case "FloatStorage": self = .float32
        case "DoubleStorage": self = .float64
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage", "UntypedStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }
}

/// The globals a state dict may name; everything else is refused.
enum PickleGlobal: Hashable {
    case orderedDict
    case rebuildTensor
    case rebuildParameter
    case rebuildParameterWithState
    case storageClass(StoredElementType)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch.storage", "UntypedStorage"): self = .storageClass(.uint8)
        case ("torch", _):
            guard let type = StoredElementType(storageClass: name) else { return nil }
            self = .storageClass(type)
        default: return nil
        }
    }
}

/// A storage named by a persistent id: zip format
/// `('storage', storage_type, key, location, numel)`, legacy format
/// `('storage', storage_type, root_key, location, numel, view_metadata)`
/// where a view is `(view_key, offset, size)` in elements of the root.
struct PickleStorageReference {
    var dataType: StoredElementType
    var key: String
    var count: Int
    var view: (offset: Int, count: Int)?
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, …)`: a strided
/// view of a storage, materialised once the storage bytes are known.
struct PickleTensorReference {
    var storage: Int
    var offset: Int
    var size: [Int]
    var stride: [Int]
}

/// Runs one pickle from `start` to its STOP opcode.
struct Unpickler {
    /// Opcodes executed per pickle; a state dict of a few thousand tensors
    /// needs well under a million.
    static let maximumOperations = 1 << 23
    /// Values on the stack at once (a SETITEMS batch holds 2 000).
    static let maximumStackHeight = 1 << 20
    /// Widest integer accepted (LONG1/LONG4), in bytes.
    static let maximumIntegerBytes = 64
    /// Highest tensor rank accepted.
    static let maximumRank = 64

    /// Runs the pickle at byte offset `start` of `data`. `part` names the
    /// pickle in errors ("data.pkl"). Returns the result and the offset just
    /// past its STOP opcode.
    static func load(_ data: Data, from start: Int = 0, file: String, part: String) throws -> (Unpickled, end: Int) {
        try data.withUnsafeBytes { raw in
            var machine = Unpickler(bytes: raw, position: start, file: file, part: part)
            let root = try machine.run()
            machine.result.root = root
            return (machine.result, machine.position)
        }
    }

    private let bytes: UnsafeRawBufferPointer
    private var position: Int
    private let file: String
    private let part: String
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var result = Unpickled()
    /// Offset of the opcode being executed, for error messages.
    private var opcodeOffset = 0

    private init(bytes: UnsafeRawBufferPointer, position: Int, file: String, part: String) {
        self.bytes = bytes
        self.position = position
        self.file = file
        self.part = part
    }

    private func fail(_ reason: String) -> WeightFileError {
        .malformed(file: file, reason: "\(part): \(reason) (pickle offset \(opcodeOffset))")
    }

    // MARK: Reading operands

    private var remaining: Int { bytes.count - position }

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw fail("needs \(count) bytes but only \(remaining) remain (truncated?)")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    private mutating func byte() throws -> UInt8 { try take(1)[0] }

    private mutating func littleEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        T(littleEndian: try take(MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }

    /// A length operand, which must fit in the remaining bytes.
    private mutating func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let value = try littleEndian(T.self)
        guard value >= 0, UInt64(value) <= UInt64(remaining) else {
            throw fail("length \(value) exceeds the \(remaining) remaining bytes (truncated?)")
        }
        return Int(value)
    }

    /// A newline-terminated line (GLOBAL operands), at most 1 000 bytes.
    private mutating func line() throws -> String {
        let start = position
        while true {
            guard position < bytes.count, position - start <= 1000 else { throw fail("GLOBAL operand is not a short line") }
            if bytes[position] == 0x0A { break }
            position += 1
        }
        let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        position += 1
        guard let text else { throw fail("GLOBAL operand is not UTF-8") }
        return text
    }

    private mutating func text(_ count: Int) throws -> String {
        guard let text = String(validating: try take(count), as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return text
    }

    /// Python 2 `str` (SHORT_BINSTRING, BINSTRING): text when it is UTF-8
    /// (torch.load uses encoding='utf-8'), bytes otherwise.
    private mutating func legacyString(_ count: Int) throws -> PickleValue {
        let raw = try take(count)
        if let text = String(validating: raw, as: UTF8.self) { return .string(text) }
        return .bytes(Data(raw))
    }

    /// LONG1 / LONG4 operand: little-endian two's complement.
    private mutating func integer(_ count: Int) throws -> PickleValue {
        guard count <= Self.maximumIntegerBytes else { throw fail("integer of \(count) bytes is too wide") }
        let raw = Array(try take(count))
        guard let last = raw.last else { return .int(0) }
        let fill: UInt8 = last & 0x80 != 0 ? 0xFF : 0
        if raw.count > 8 {
            // Fits in Int64 when the extra bytes are only sign extension of byte 7.
            let signExtension = raw[7] & 0x80 != 0 ? UInt8(0xFF) : 0
            guard raw[8...].allSatisfy({ $0 == signExtension }) else { return .bigInt(raw) }
        }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(i < raw.count ? raw[i] : fill) << (8 * UInt64(i)) }
        return .int(Int(Int64(bitPattern: value)))
    }

    // MARK: The stack

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maximumStackHeight else { throw fail("stack exceeds \(Self.maximumStackHeight) values") }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return stack.removeLast()
    }

    private func top() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let value = stack.last else { throw fail("stack underflow") }
        return value
    }

    /// The values pushed since the last MARK, which is removed.
    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw fail("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func newTuple(_ items: [PickleValue]) -> PickleValue {
        result.tuples.append(items)
        return .tuple(result.tuples.count - 1)
    }

    private mutating func newDict() -> PickleValue {
        result.dicts.append(PickleDictionary())
        return .dict(result.dicts.count - 1)
    }

    private mutating func setItems(_ items: [PickleValue], of target: PickleValue) throws {
        guard case let .dict(index) = target else { throw fail("SETITEM(S) on something that is not a dict") }
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
        for pair in stride(from: 0, to: items.count, by: 2) {
            result.dicts[index].set(items[pair + 1], for: items[pair])
        }
    }

    // MARK: The machine

    private mutating func run() throws -> PickleValue {
        var operations = 0
        while true {
            operations += 1
            guard operations <= Self.maximumOperations else { throw fail("more than \(Self.maximumOperations) operations") }
            opcodeOffset = position
            guard position < bytes.count else { throw fail("ends without a STOP opcode (truncated?)") }
            let opcode = try byte()
            if opcode == 0x2E {  // STOP
                return try pop()
            }
            try step(opcode)
        }
    }

    private mutating func step(_ opcode: UInt8) throws {
        switch opcode {
        case 0x80:  // PROTO
            let version = try byte()
            guard version >= 2, version <= 5 else { throw fail("pickle protocol \(version) is not supported (2 to 5 are)") }
        case 0x95:  // FRAME: framing is only a read-ahead hint
            _ = try length(UInt64.self)
        case 0x28:  // MARK
            guard marks.count < Self.maximumStackHeight else { throw fail("too many MARKs") }
            marks.append(stack.count)
        case 0x30:  // POP
            if stack.count > (marks.last ?? 0) { stack.removeLast() } else { _ = try popMark() }
        case 0x31:  // POP_MARK
            _ = try popMark()
        case 0x32:  // DUP
            try push(try top())
        case 0x4E:  // NONE
            try push(.none)
        case 0x88:  // NEWTRUE
            try push(.bool(true))
        case 0x89:  // NEWFALSE
            try push(.bool(false))
        case 0x4A:  // BININT
            try push(.int(Int(try littleEndian(Int32.self))))
        case 0x4B:  // BININT1
            try push(.int(Int(try byte())))
        case 0x4D:  // BININT2
            try push(.int(Int(try littleEndian(UInt16.self))))
        case 0x8A:  // LONG1
            try push(try integer(Int(try byte())))
        case 0x8B:  // LONG4
            let count = try littleEndian(Int32.self)
            guard count >= 0 else { throw fail("LONG4 with negative length \(count)") }
            try push(try integer(Int(count)))
        case 0x47:  // BINFLOAT: big-endian IEEE double
            try push(.float(Double(bitPattern: UInt64(bigEndian: try take(8).loadUnaligned(as: UInt64.self)))))
        case 0x8C:  // SHORT_BINUNICODE
            try push(.string(try text(Int(try byte()))))
        case 0x58:  // BINUNICODE
            try push(.string(try text(try length(UInt32.self))))
        case 0x8D:  // BINUNICODE8
            try push(.string(try text(try length(UInt64.self))))
        case 0x43:  // SHORT_BINBYTES
            try push(.bytes(Data(try take(Int(try byte())))))
        case 0x42:  // BINBYTES
            try push(.bytes(Data(try take(try length(UInt32.self)))))
        case 0x8E:  // BINBYTES8
            try push(.bytes(Data(try take(try length(UInt64.self)))))
        case 0x55:  // SHORT_BINSTRING
            try push(try legacyString(Int(try byte())))
        case 0x54:  // BINSTRING
            try push(try legacyString(try length(Int32.self)))
        case 0x29:  // EMPTY_TUPLE
            try push(newTuple([]))
        case 0x74:  // TUPLE
            try push(newTuple(try popMark()))
        case 0x85:  // TUPLE1
            let a = try pop()
            try push(newTuple([a]))
        case 0x86:  // TUPLE2
            let b = try pop(), a = try pop()
            try push(newTuple([a, b]))
        case 0x87:  // TUPLE3
            let c = try pop(), b = try pop(), a = try pop()
            try push(newTuple([a, b, c]))
        case 0x5D:  // EMPTY_LIST
            result.lists.append([])
            try push(.list(result.lists.count - 1))
        case 0x6C:  // LIST
            result.lists.append(try popMark())
            try push(.list(result.lists.count - 1))
        case 0x61, 0x65:  // APPEND, APPENDS
            let items = opcode == 0x61 ? [try pop()] : try popMark()
            guard case let .list(index) = try top() else { throw fail("APPEND(S) on something that is not a list") }
            result.lists[index].append(contentsOf: items)
        case 0x7D:  // EMPTY_DICT
            try push(newDict())
        case 0x64:  // DICT
            let items = try popMark()
            let dict = newDict()
            try setItems(items, of: dict)
            try push(dict)
        case 0x73:  // SETITEM
            let value = try pop(), key = try pop()
            try setItems([key, value], of: try top())
        case 0x75:  // SETITEMS
            let items = try popMark()
            try setItems(items, of: try top())
        case 0x8F:  // EMPTY_SET
            result.sets.append([])
            try push(.set(result.sets.count - 1))
        case 0x90:  // ADDITEMS
            let items = try popMark()
            guard case let .set(index) = try top() else { throw fail("ADDITEMS on something that is not a set") }
            result.sets[index].append(contentsOf: items)
        case 0x91:  // FROZENSET
            result.sets.append(try popMark())
            try push(.set(result.sets.count - 1))
        case 0x71:  // BINPUT
            memo[Int(try byte())] = try top()
        case 0x72:  // LONG_BINPUT
            memo[Int(try littleEndian(UInt32.self))] = try top()
        case 0x94:  // MEMOIZE
            memo[memo.count] = try top()
        case 0x68, 0x6A:  // BINGET, LONG_BINGET
            let index = opcode == 0x68 ? Int(try byte()) : Int(try littleEndian(UInt32.self))
            guard let value = memo[index] else { throw fail("memo entry \(index) was never stored") }
            try push(value)
        case 0x63:  // GLOBAL
            let module = try line(), name = try line()
            try push(.global(try resolve(module: module, name: name)))
        case 0x93:  // STACK_GLOBAL
            guard let name = try pop().string, let module = try pop().string else {
                throw fail("STACK_GLOBAL operands are not strings")
            }
            try push(.global(try resolve(module: module, name: name)))
        case 0x52:  // REDUCE
            let arguments = try pop(), callable = try pop()
            try push(try call(callable, arguments, opcode: "REDUCE"))
        case 0x81:  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict
            let arguments = try pop(), callable = try pop()
            guard callable == .global(.orderedDict) else { throw fail("NEWOBJ on something other than OrderedDict") }
            try push(try call(callable, arguments, opcode: "NEWOBJ"))
        case 0x62:  // BUILD: a dict's state is its attributes (_metadata); ignored
            _ = try pop()
            switch try top() {
            case .dict, .tensor: break
            default: throw fail("BUILD on something that is neither a dict nor a tensor")
            }
        case 0x51:  // BINPERSID
            try push(try persistentLoad(try pop()))
        default:
            let printable = (0x21...0x7E).contains(opcode) ? " ('\(Character(Unicode.Scalar(opcode)))')" : ""
            throw fail(String(format: "unsupported pickle opcode 0x%02X", opcode) + printable)
        }
    }

    private func resolve(module: String, name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            throw WeightFileError.forbiddenGlobal(file: file, name: "\(module).\(name)")
        }
        return global
    }

    // MARK: Interpreting the allow-listed globals

    private mutating func call(_ callable: PickleValue, _ argumentValue: PickleValue, opcode: String) throws -> PickleValue {
        guard case let .global(global) = callable else { throw fail("\(opcode) on a value that is not a global") }
        guard case let .tuple(argumentIndex) = argumentValue else { throw fail("\(opcode) arguments are not a tuple") }
        let arguments = result.tuples[argumentIndex]
        switch global {
        case .orderedDict:
            guard arguments.isEmpty else { throw fail("OrderedDict called with arguments") }
            return newDict()
        case .rebuildTensor:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard arguments.count == 6 || arguments.count == 7 else {
                throw fail("_rebuild_tensor_v2 takes 6 or 7 arguments, not \(arguments.count)")
            }
            guard case let .storage(storage) = arguments[0] else { throw fail("_rebuild_tensor_v2 without a storage") }
            guard let offset = arguments[1].int, offset >= 0 else { throw fail("_rebuild_tensor_v2 with a bad storage offset") }
            let size = try dimensions(arguments[2], what: "size")
            let stride = try dimensions(arguments[3], what: "stride")
            guard size.count == stride.count else {
                throw fail("_rebuild_tensor_v2 size \(size) and stride \(stride) differ in rank")
            }
            result.tensors.append(PickleTensorReference(storage: storage, offset: offset, size: size, stride: stride))
            return .tensor(result.tensors.count - 1)
        case .rebuildParameter, .rebuildParameterWithState:
            // (data, requires_grad, backward_hooks[, state])
            guard arguments.count == (global == .rebuildParameter ? 3 : 4), case .tensor = arguments[0] else {
                throw fail("_rebuild_parameter arguments are not (tensor, requires_grad, hooks[, state])")
            }
            return arguments[0]
        case .storageClass(let type):
            throw fail("\(opcode) calls the storage class \(type)")
        }
    }

    /// A tuple of non-negative integers (a tensor's size or stride).
    private func dimensions(_ value: PickleValue, what: String) throws -> [Int] {
        guard case let .tuple(index) = value, result.tuples[index].count <= Self.maximumRank else {
            throw fail("_rebuild_tensor_v2 \(what) is not a tuple of at most \(Self.maximumRank) integers")
        }
        return try result.tuples[index].map { item in
            guard let number = item.int, number >= 0 else { throw fail("_rebuild_tensor_v2 \(what) holds \(item)") }
            return number
        }
    }

    private mutating func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case let .tuple(index) = id else { throw fail("persistent id is not a tuple") }
        let items = result.tuples[index]
        guard items.count == 5 || items.count == 6, items[0] == .string("storage") else {
            throw fail("persistent id is not ('storage', type, key, location, numel[, view])")
        }
        guard case let .global(.storageClass(type)) = items[1] else { throw fail("persistent id names no storage class") }
        let key: String
        switch items[2] {
        case let .string(text): key = text
        case let .int(number): key = String(number)
        default: throw fail("persistent id has a storage key that is neither a string nor an integer")
        }
        guard let count = items[4].int, count >= 0 else { throw fail("storage '\(key)' has a bad element count") }
        var view: (offset: Int, count: Int)?
        if items.count == 6, items[5] != .none {
            guard case let .tuple(viewIndex) = items[5], result.tuples[viewIndex].count == 3,
                let offset = result.tuples[viewIndex][1].int, let viewCount = result.tuples[viewIndex][2].int,
                offset >= 0, viewCount >= 0, offset <= count, viewCount <= count - offset
            else { throw fail("storage '\(key)' has a bad view (offset, size)") }
            view = (offset, viewCount)
        }
        result.storages.append(PickleStorageReference(dataType: type, key: key, count: count, view: view))
        return .storage(result.storages.count - 1)
    }
}
