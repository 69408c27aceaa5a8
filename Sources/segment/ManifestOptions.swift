import ArgumentParser
import Foundation
import Segmentation

/// `--manifest` and the options that go with it, shared by `inspect` and `evaluate`.
struct ManifestOptions: ParsableArguments {
    @Option(help: "An augmented manifest (JSON Lines) instead of --data.", completion: .file())
    var manifest: String?

    @Option(name: .customLong("attribute-names"),
            help: "With --manifest: the image and annotation keys, e.g. source-ref,my-labels-ref.")
    var attributeNames: String?

    @Option(name: .customLong("s3-root"), help: "With --manifest: read s3://bucket/key from DIR/bucket/key.",
            completion: .directory)
    var s3Root: String?

    @Option(name: .customLong("label-map"), help: "With --manifest: a label map JSON file (default identity).",
            completion: .file())
    var labelMap: String?

    /// Exactly one of `--data` and `--manifest`, and the manifest's options only with it.
    func check(data: String?) throws {
        guard (data == nil) != (manifest == nil) else { throw ValidationError("give exactly one of --data or --manifest") }
        if manifest == nil, attributeNames != nil || s3Root != nil || labelMap != nil {
            throw ValidationError("--attribute-names, --s3-root and --label-map go with --manifest")
        }
    }

    /// The manifest as the library reads it (nil without --manifest).
    func source() throws -> ManifestSource? {
        guard let manifest else { return nil }
        return ManifestSource(
            manifest: URL(fileURLWithPath: manifest), attributeNames: attributeNames.map(AugmentedManifest.attributeNames(from:)),
            s3Root: s3Root.map { URL(fileURLWithPath: $0) },
            labelMap: try labelMap.map { try LabelMap.load(contentsOf: URL(fileURLWithPath: $0)) } ?? .identity)
    }
}
