import FuzzSupport
import Segmentation

// Zip .pth files (torch ≥ 1.6): libarchive's seekable zip reader, then the
// data.pkl pickle and the storages it names.
fuzz { data in
    _ = try? PyTorchStateDict.read(data: data, file: "fuzz.pth")
}
