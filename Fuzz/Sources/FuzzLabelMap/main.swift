import FuzzSupport
import Segmentation

// label_map/*.json: {"scale": k} or {"map": {...}}; a map that parses is
// applied to a mask holding every byte value.
let everyValue = ClassMask(width: 16, height: 16, values: (0...255).map { UInt8($0) })
fuzz { data in
    guard let map = try? LabelMap.parse(data, file: "fuzz_label_map.json") else { return }
    _ = try? map.apply(to: everyValue, classCount: 255, file: "fuzz")
    _ = map.histogram(of: everyValue)
    _ = map.description
}
