import Foundation
import FuzzSupport
import Segmentation

// model.json through ModelDirectory.decodeDescription: the JSON, the format
// version and every key a network needs (model.json inside an archive is also
// reached by FuzzTarGz).
fuzz { data in
    _ = try? ModelDirectory.decodeDescription(data, file: "model.json")
}
