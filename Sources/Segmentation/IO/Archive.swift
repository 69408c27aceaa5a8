import CArchive
import Foundation

// The one place that talks to libarchive: zip reading (PyTorch checkpoints),
// tar.gz reading and writing (model.tar.gz). Everything else in the module
// sees only `Data`, file URLs and `[String: Data]`.

// MARK: - Zip reading

/// Total uncompressed size a zip may expand to; beyond it the archive is
/// refused as a zip bomb (a real checkpoint is far smaller).
let maximumZipUncompressedSize = 8 << 30

/// Every regular entry of the zip archive `data`, keyed by its path inside the
/// archive. Directories and other entry types are skipped.
///
/// Only the seekable zip reader is enabled: it reads the central directory at
/// the end of the archive, so a truncated file is an error instead of a
/// prefix of its entries, and each entry's CRC-32 is verified. Errors carry
/// libarchive's message and name `file`.
func readZipEntries(_ data: Data, file: String, limit: Int = maximumZipUncompressedSize) throws -> [String: Data] {
    try readArchiveEntries(data, file: file, kind: "zip", limit: limit) { archive_read_support_format_zip_seekable($0) }
}

/// Every regular entry of a gzip-compressed tar archive (model.tar.gz).
func readTarGzEntries(_ data: Data, file: String, limit: Int = maximumZipUncompressedSize) throws -> [String: Data] {
    try readArchiveEntries(data, file: file, kind: "tar.gz", limit: limit) { archive in
        let filter = archive_read_support_filter_gzip(archive)
        // ARCHIVE_WARN: gzip through an external program; fine either way.
        guard filter == ARCHIVE_OK || filter == ARCHIVE_WARN else { return filter }
        return archive_read_support_format_tar(archive)
    }
}

private func readArchiveEntries(
    _ data: Data, file: String, kind: String, limit: Int, enable: (OpaquePointer) -> Int32
) throws -> [String: Data] {
    func fail(_ archive: OpaquePointer?, _ context: String) -> WeightFileError {
        let detail = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        return .malformed(file: file, reason: "\(context): \(detail)")
    }
    guard let archive = archive_read_new() else {
        throw WeightFileError.malformed(file: file, reason: "libarchive could not allocate a reader")
    }
    defer { archive_read_free(archive) }
    guard enable(archive) == ARCHIVE_OK else {
        throw fail(archive, "cannot enable \(kind) reading")
    }
    return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [String: Data] in
        guard let base = raw.baseAddress, raw.count > 0 else {
            throw WeightFileError.malformed(file: file, reason: "not a \(kind) archive: the file is empty")
        }
        guard archive_read_open_memory(archive, UnsafeMutableRawPointer(mutating: base), raw.count) == ARCHIVE_OK else {
            throw fail(archive, "not a \(kind) archive")
        }
        var entries: [String: Data] = [:]
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            var entry: OpaquePointer?
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw fail(archive, "cannot read the next \(kind) entry")
            }
            guard let pathPointer = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
                throw WeightFileError.malformed(file: file, reason: "\(kind) entry without a name")
            }
            let path = String(cString: pathPointer)
            // AE_IFREG is a C cast macro Swift does not import.
            guard archive_entry_filetype(entry) == 0o100000 else {
                archive_read_data_skip(archive)
                continue
            }
            var contents = Data()
            if archive_entry_size_is_set(entry) != 0 {
                let declared = archive_entry_size(entry)
                guard declared >= 0, declared <= Int64(limit - total) else {
                    throw WeightFileError.malformed(
                        file: file, reason: "\(kind) entry '\(path)' declares \(declared) bytes, beyond the \(limit)-byte limit")
                }
                // Reserve no more than the archive could plausibly hold; the
                // declared size is only a hint.
                contents.reserveCapacity(Int(min(declared, Int64(raw.count) * 4 + 4096)))
            }
            while true {
                let count = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                if count == 0 { break }
                guard count > 0 else { throw fail(archive, "cannot read \(kind) entry '\(path)'") }
                total += count
                guard total <= limit else {
                    throw WeightFileError.malformed(
                        file: file, reason: "\(kind) entries expand beyond \(limit) bytes (a zip bomb?) at '\(path)'")
                }
                contents.append(contentsOf: chunk[0..<count])
            }
            guard entries[path] == nil else {
                throw WeightFileError.malformed(file: file, reason: "\(kind) entry '\(path)' appears twice")
            }
            entries[path] = contents
        }
        return entries
    }
}

// MARK: - tar.gz writing

/// Writes `files` (name inside the archive → file on disk) as a gzip-compressed
/// POSIX tar archive at `destination`, atomically: a temporary file in the
/// same directory, renamed when complete.
func writeTarGz(_ files: [(name: String, source: URL)], to destination: URL) throws {
    func fail(_ archive: OpaquePointer?, _ context: String) -> WeightFileError {
        let detail = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        return .writeFailed(file: destination.path, reason: "\(context): \(detail)")
    }
    let temporary = destination.deletingLastPathComponent()
        .appendingPathComponent(".\(destination.lastPathComponent).tmp-\(getpid())")
    guard let archive = archive_write_new() else {
        throw WeightFileError.writeFailed(file: destination.path, reason: "libarchive could not allocate a writer")
    }
    var finished = false
    defer {
        if !finished { archive_write_free(archive); try? FileManager.default.removeItem(at: temporary) }
    }
    guard archive_write_add_filter_gzip(archive) == ARCHIVE_OK, archive_write_set_format_pax_restricted(archive) == ARCHIVE_OK,
        archive_write_open_filename(archive, temporary.path) == ARCHIVE_OK
    else { throw fail(archive, "cannot open the archive") }
    for (name, source) in files {
        let contents: Data
        do {
            contents = try Data(contentsOf: source, options: .mappedIfSafe)
        } catch {
            throw WeightFileError.writeFailed(file: destination.path, reason: "cannot read \(source.path): \(error.localizedDescription)")
        }
        guard let entry = archive_entry_new() else { throw fail(archive, "cannot allocate an entry") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_size(entry, Int64(contents.count))
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_mtime(entry, time(nil), 0)
        guard archive_write_header(archive, entry) == ARCHIVE_OK else { throw fail(archive, "cannot add \(name)") }
        let written = contents.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        guard written == contents.count else { throw fail(archive, "cannot write \(name)") }
    }
    guard archive_write_close(archive) == ARCHIVE_OK else { throw fail(archive, "cannot finish the archive") }
    archive_write_free(archive)
    finished = true
    if rename(temporary.path, destination.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw WeightFileError.writeFailed(file: destination.path, reason: reason)
    }
}
