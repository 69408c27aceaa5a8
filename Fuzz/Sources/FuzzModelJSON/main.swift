import Foundation
import FuzzSupport
import Segmentation

// model.json, through the public Decodable of ModelDirectory.ModelDescription
// (ModelDirectory.decodeDescription, which adds the format-version check, is
// internal; model.json inside an archive is also reached by FuzzTarGz).
fuzz { data in
    _ = try? JSONDecoder().decode(ModelDirectory.ModelDescription.self, from: data)
}
