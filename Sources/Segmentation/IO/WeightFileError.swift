import Foundation

/// Errors reading or writing a weights file. Each names the file and, where
/// there is one, the tensor key, so a user can tell which file to replace.
public enum WeightFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case malformed(file: String, reason: String)
    case unsupportedDataType(file: String, key: String, dataType: String)
    case missingTensor(file: String, key: String)
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])
    case writeFailed(file: String, reason: String)
    /// A pickle (PyTorch checkpoint) names a global outside the allow-list of
    /// tensor rebuilders and plain containers; `name` is "module.name".
    case forbiddenGlobal(file: String, name: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read weights file: \(reason)"
        case let .malformed(file, reason):
            return "\(file): not a valid weights file: \(reason)"
        case let .unsupportedDataType(file, key, dataType):
            return "\(file): tensor '\(key)' has data type \(dataType), which is not supported (use F32, F16, BF16, F64, I64 or I32)"
        case let .missingTensor(file, key):
            return "\(file): tensor '\(key)' is missing"
        case let .shapeMismatch(file, key, expected, found):
            return "\(file): tensor '\(key)' has shape \(found), expected \(expected)"
        case let .writeFailed(file, reason):
            return "\(file): cannot write: \(reason)"
        case let .forbiddenGlobal(file, name):
            return "\(file): refuses to load: the pickle names the global '\(name)', which a state dict never needs; "
                + "only tensors and plain containers are accepted"
        }
    }
}

extension WeightFileError {
    /// The bytes of a weights file (memory-mapped when possible), or
    /// `.unreadable` naming the file.
    static func contents(of url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw WeightFileError.unreadable(file: url.path, reason: error.localizedDescription)
        }
    }
}
