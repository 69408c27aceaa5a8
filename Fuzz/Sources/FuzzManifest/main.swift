import Foundation
import FuzzSupport
import Segmentation

// Augmented manifests (JSON Lines) with the default attribute names, and with
// explicit ones and an S3 root, which take other paths through the parser.
let manifest = URL(fileURLWithPath: "/fuzz/train.manifest")
fuzz { data in
    let text = String(decoding: data, as: UTF8.self)
    _ = try? AugmentedManifest.parse(text, manifest: manifest)
    _ = try? AugmentedManifest.parse(text, manifest: manifest, attributeNames: ["source-ref", "label-ref"],
                                     s3Root: URL(fileURLWithPath: "/fuzz/s3"))
}
