import FuzzSupport
import Segmentation

// safetensors: 8-byte header length, JSON header, tensor bytes. A file that
// reads is written back and read again: what we accept we must reproduce.
fuzz { data in
    guard let file = try? SafeTensorsFile(data: data, file: "fuzz.safetensors") else { return }
    guard let written = try? file.serialized() else { return }
    _ = try? SafeTensorsFile(data: written, file: "fuzz-rewritten.safetensors")
}
