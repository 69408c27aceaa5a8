import Foundation
import FuzzSupport
import Segmentation

// model.tar.gz through ModelDirectory.read, the only public way in: gzip and
// tar (libarchive), then model.json and the safetensors weights. The reader
// takes a file, so each input is written to one scratch file first.
let scratch = URL(fileURLWithPath: NSTemporaryDirectory())
    .appendingPathComponent("segmentation-fuzz-\(getpid())-model.tar.gz")
fuzz { data in
    // Foundation's Data(contentsOf:) (swift-foundation in Swift 6.3.1) leaks
    // its 4 KB read buffer on an empty file, which LeakSanitizer reports.
    // Not ours to fix, and an empty file is no archive, so it is skipped.
    guard !data.isEmpty else { return }
    guard (try? data.write(to: scratch)) != nil else { fatalError("cannot write the scratch file \(scratch.path)") }
    _ = try? ModelDirectory.read(scratch)
}
