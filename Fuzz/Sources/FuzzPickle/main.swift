import FuzzSupport
import Segmentation

// The restricted unpickler, through the legacy (non-zip) .pth format: five
// pickles back to back, then the storages. Inputs starting with "PK" would go
// to the zip reader, which FuzzPthZip covers.
fuzz { data in
    guard !data.starts(with: [0x50, 0x4B]) else { return }
    _ = try? PyTorchStateDict.read(data: data, file: "fuzz.pth")
}
