import Foundation

/// Writes `data` to `url` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over the destination. A reader never sees a
/// half-written file, and a crash leaves the previous version in place.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
        throw WeightFileError.writeFailed(file: url.path, reason: "cannot create \(temporary.path)")
    }
    do {
        let handle = try FileHandle(forWritingTo: temporary)
        defer { try? handle.close() }
        try handle.write(contentsOf: data)
        try handle.synchronize()
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw WeightFileError.writeFailed(file: url.path, reason: "\(error)")
    }
    if rename(temporary.path, url.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw WeightFileError.writeFailed(file: url.path, reason: reason)
    }
}
