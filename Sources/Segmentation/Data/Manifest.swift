import Foundation

/// An augmented manifest (SPEC §2): JSON Lines, one object per sample with
/// `source-ref` (the image) and an annotation attribute ending in `-ref`.
///
/// - `attributeNames`: `["source-ref", "NAME-ref"]` names the image and
///   annotation keys; when nil, the image is `source-ref` and the annotation
///   the single other key ending in `-ref`.
/// - Other keys are ignored, blank lines skipped.
/// - Paths are absolute, relative to the manifest's directory, `file://` URLs,
///   or `s3://bucket/key`, read from `<s3Root>/bucket/key`.
public enum AugmentedManifest {
    /// The samples of the manifest at `url`, in file order; `name` is the
    /// image's base name. Files are not checked for existence here.
    public static func read(_ url: URL, attributeNames: [String]? = nil, s3Root: URL? = nil) throws
        -> [SegmentationSample]
    {
        try parseNumbered(text(of: url), manifest: url, attributeNames: attributeNames, s3Root: s3Root).map(\.sample)
    }

    /// The manifest's text; a file that cannot be read is an error naming it.
    static func text(of url: URL) throws -> String {
        do {
            return try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw DatasetError.malformedManifestLine(
                file: url.path, line: 0, reason: "cannot read the manifest (\(error.localizedDescription))")
        }
    }

    /// Parses manifest `text`; `manifest` names it in errors and anchors relative paths.
    public static func parse(_ text: String, manifest: URL, attributeNames: [String]? = nil, s3Root: URL? = nil) throws
        -> [SegmentationSample]
    {
        try parseNumbered(text, manifest: manifest, attributeNames: attributeNames, s3Root: s3Root).map(\.sample)
    }

    /// The samples with the 1-based line each came from.
    static func parseNumbered(_ text: String, manifest: URL, attributeNames: [String]?, s3Root: URL?) throws
        -> [(sample: SegmentationSample, line: Int)]
    {
        let file = manifest.path
        if let attributeNames, attributeNames.count != 2 {
            throw DatasetError.malformedManifestLine(
                file: file, line: 0,
                reason: "attribute names \(attributeNames) must be two: the image key and the annotation key "
                    + "(e.g. source-ref,my-labels-ref)")
        }
        let directory = manifest.deletingLastPathComponent()
        var samples: [(sample: SegmentationSample, line: Int)] = []
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            func fail(_ reason: String) -> DatasetError { .malformedManifestLine(file: file, line: number, reason: reason) }
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            let imageKey = attributeNames?[0] ?? "source-ref"
            let annotationKey: String
            if let attributeNames {
                annotationKey = attributeNames[1]
            } else {
                let candidates = object.keys.filter { $0.hasSuffix("-ref") && $0 != imageKey }.sorted()
                guard candidates.count == 1 else {
                    throw fail(candidates.isEmpty
                        ? "no annotation attribute (a key ending in -ref besides \(imageKey))"
                        : "several annotation attributes \(candidates); choose one with --attribute-names \(imageKey),NAME-ref")
                }
                annotationKey = candidates[0]
            }
            var urls: [URL] = []
            for key in [imageKey, annotationKey] {
                guard let value = object[key] else { throw fail("no \"\(key)\" key") }
                guard let path = value as? String, !path.isEmpty else { throw fail("\"\(key)\" is not a path string") }
                urls.append(try resolve(path, relativeTo: directory, s3Root: s3Root, file: file, line: number))
            }
            samples.append((SegmentationSample(
                image: urls[0], annotation: urls[1], name: urls[0].deletingPathExtension().lastPathComponent), number))
        }
        return samples
    }

    private static func resolve(_ path: String, relativeTo directory: URL, s3Root: URL?, file: String, line: Int) throws
        -> URL
    {
        if path.hasPrefix("s3://") {
            guard let s3Root else { throw DatasetError.s3PathWithoutRoot(file: file, line: line, path: path) }
            let key = path.dropFirst("s3://".count)
            guard key.contains("/"), !key.hasPrefix("/") else {
                throw DatasetError.malformedManifestLine(file: file, line: line, reason: "\(path) is not s3://bucket/key")
            }
            return s3Root.appendingPathComponent(String(key))
        }
        if path.hasPrefix("file://"), let url = URL(string: path), url.isFileURL { return url }
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        if let scheme = path.range(of: "://") {
            throw DatasetError.malformedManifestLine(
                file: file, line: line,
                reason: "\(path): unsupported scheme \(path[..<scheme.lowerBound]); paths must be local or s3://")
        }
        return directory.appendingPathComponent(path)
    }
}

extension ChannelDataset {
    /// The samples of an augmented manifest, with `labelMap` given explicitly;
    /// throws when a referenced file does not exist.
    public init(manifest: URL, attributeNames: [String]? = nil, s3Root: URL? = nil, labelMap: LabelMap = .identity)
        throws
    {
        let text = try AugmentedManifest.text(of: manifest)
        let numbered = try AugmentedManifest.parseNumbered(
            text, manifest: manifest, attributeNames: attributeNames, s3Root: s3Root)
        for (sample, line) in numbered {
            for url in [sample.image, sample.annotation] where !FileManager.default.fileExists(atPath: url.path) {
                throw DatasetError.missingFile(path: url.path, manifest: manifest.path, line: line)
            }
        }
        if numbered.isEmpty { throw DatasetError.emptyChannel(directory: manifest.path) }
        self.init(name: manifest.lastPathComponent, samples: numbered.map(\.sample), labelMap: labelMap)
    }
}

extension AugmentedManifest {
    /// `"source-ref, my-labels-ref"` → `["source-ref", "my-labels-ref"]`
    /// (the `--attribute-names` form).
    public static func attributeNames(from text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// An augmented manifest and how to read it: which keys hold the image and
/// the annotation, where `s3://` paths live locally, and the label map.
public struct ManifestSource: Sendable, Equatable {
    public var manifest: URL
    public var attributeNames: [String]?
    public var s3Root: URL?
    public var labelMap: LabelMap

    public init(manifest: URL, attributeNames: [String]? = nil, s3Root: URL? = nil, labelMap: LabelMap = .identity) {
        self.manifest = manifest
        self.attributeNames = attributeNames
        self.s3Root = s3Root
        self.labelMap = labelMap
    }

    /// The manifest's samples; throws when a referenced file does not exist.
    public func dataset() throws -> ChannelDataset {
        try ChannelDataset(manifest: manifest, attributeNames: attributeNames, s3Root: s3Root, labelMap: labelMap)
    }

    /// What `DatasetInspection` reads.
    public var inspectionSource: DatasetInspection.Source {
        .manifest(manifest, attributeNames: attributeNames, s3Root: s3Root, labelMap: labelMap)
    }
}
