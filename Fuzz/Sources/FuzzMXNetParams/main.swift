import FuzzSupport
import Segmentation

// GluonCV/MXNet .params (NDArray list) files.
fuzz { data in
    _ = try? MXNetParams.read(data: data, file: "fuzz.params")
}
