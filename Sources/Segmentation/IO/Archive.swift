import CArchive
import Foundation

// The one place that talks to libarchive: zip reading (PyTorch checkpoints).
// Everything else in the module sees only `Data` in and `Data` out.

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
    func fail(_ archive: OpaquePointer?, _ context: String) -> WeightFileError {
        let detail = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        return .malformed(file: file, reason: "\(context): \(detail)")
    }
    guard let archive = archive_read_new() else {
        throw WeightFileError.malformed(file: file, reason: "libarchive could not allocate a reader")
    }
    defer { archive_read_free(archive) }
    guard archive_read_support_format_zip_seekable(archive) == ARCHIVE_OK else {
        throw fail(archive, "cannot enable zip reading")
    }
    return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [String: Data] in
        guard let base = raw.baseAddress, raw.count > 0 else {
            throw WeightFileError.malformed(file: file, reason: "not a zip archive: the file is empty")
        }
        guard archive_read_open_memory(archive, UnsafeMutableRawPointer(mutating: base), raw.count) == ARCHIVE_OK else {
            throw fail(archive, "not a zip archive")
        }
        var entries: [String: Data] = [:]
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            var entry: OpaquePointer?
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else {
                throw fail(archive, "cannot read the next zip entry")
            }
            guard let pathPointer = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
                throw WeightFileError.malformed(file: file, reason: "zip entry without a name")
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
                        file: file, reason: "zip entry '\(path)' declares \(declared) bytes, beyond the \(limit)-byte limit")
                }
                // Reserve no more than the archive could plausibly hold; the
                // declared size is only a hint.
                contents.reserveCapacity(Int(min(declared, Int64(raw.count) * 4 + 4096)))
            }
            while true {
                let count = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                if count == 0 { break }
                guard count > 0 else { throw fail(archive, "cannot read zip entry '\(path)'") }
                total += count
                guard total <= limit else {
                    throw WeightFileError.malformed(
                        file: file, reason: "zip entries expand beyond \(limit) bytes (a zip bomb?) at '\(path)'")
                }
                contents.append(contentsOf: chunk[0..<count])
            }
            guard entries[path] == nil else {
                throw WeightFileError.malformed(file: file, reason: "zip entry '\(path)' appears twice")
            }
            entries[path] = contents
        }
        return entries
    }
}
