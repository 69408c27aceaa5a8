import Foundation

/// How annotation values become class ids (SPEC §2 "Label map").
///
/// - `.scale(k)`: label = floor(value / k); `.scale(1)` (the default, when no
///   label map file exists) keeps values as they are.
/// - `.map(table)`: keys are pixel values, values their labels — the file
///   `{"map": {"0": 5, "1": 0, "2": 2}}` (label → value) becomes
///   `[5: 0, 0: 1, 2: 2]`; values not in the table become ignore.
///
/// Value 255 is `ignoreLabel` and stays ignore under every map.
public enum LabelMap: Sendable, Equatable {
    case scale(Int)
    case map([UInt8: UInt8])

    /// The SPEC default, `{"scale": "1"}`.
    public static let identity = LabelMap.scale(1)

    /// 256 entries: pixel value → class id (255 = ignore).
    public var lookupTable: [UInt8] {
        switch self {
        case .scale(let k):
            precondition(k >= 1, "label map scale must be ≥ 1, got \(k)")
            return (0..<256).map { $0 == Int(ignoreLabel) ? ignoreLabel : UInt8($0 / k) }
        case .map(let table):
            var lookup = [UInt8](repeating: ignoreLabel, count: 256)
            for (value, label) in table where value != ignoreLabel { lookup[Int(value)] = label }
            return lookup
        }
    }

    /// Class ids of `mask` (255 kept), checked against `classCount`; `file`
    /// names the annotation in the error.
    public func apply(to mask: ClassMask, classCount: Int, file: String) throws -> [UInt8] {
        precondition((1...255).contains(classCount), "classCount must be in 1…255, got \(classCount)")
        let lookup = lookupTable
        var counts = [Int](repeating: 0, count: 256)
        let labels = mask.values.map { value in
            let label = lookup[Int(value)]
            counts[Int(label)] += 1
            return label
        }
        if let bad = (classCount..<Int(ignoreLabel)).first(where: { counts[$0] > 0 }) {
            throw DatasetError.labelOutOfRange(file: file, value: bad, pixelCount: counts[bad], classCount: classCount)
        }
        return labels
    }

    /// Pixel counts per class id (256 entries, index 255 = ignore) of `mask` after the map.
    public func histogram(of mask: ClassMask) -> [Int] {
        let lookup = lookupTable
        var counts = [Int](repeating: 0, count: 256)
        for value in mask.values { counts[Int(lookup[Int(value)])] += 1 }
        return counts
    }

    // MARK: Parsing

    /// Reads a label map file (`label_map/train_label_map.json`).
    public static func load(contentsOf url: URL) throws -> LabelMap {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw DatasetError.malformedLabelMap(file: url.path, reason: "cannot read it (\(error.localizedDescription))")
        }
        return try parse(data, file: url.path)
    }

    /// Parses `{"scale": k}` or `{"map": {"<label>": <value>, …}}`; numbers may
    /// be JSON numbers or strings ("3"). `file` names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> LabelMap {
        func fail(_ reason: String) -> DatasetError { .malformedLabelMap(file: file, reason: reason) }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw fail("not valid JSON")
        }
        guard let top = object as? [String: Any] else { throw fail("the top level is not a JSON object") }
        guard top.count == 1, let key = top.keys.first, key == "scale" || key == "map" else {
            throw fail("found keys \(top.keys.sorted()), expected exactly one of \"scale\" or \"map\"")
        }
        if key == "scale" {
            guard let k = integer(top["scale"]!) else { throw fail("scale \(top["scale"]!) is not an integer") }
            guard k >= 1 else { throw fail("scale must be ≥ 1, got \(k)") }
            return .scale(k)
        }
        guard let entries = top["map"] as? [String: Any] else { throw fail("\"map\" is not a JSON object") }
        var table: [UInt8: UInt8] = [:]
        var labelOfValue: [Int: Int] = [:]
        for (labelText, rawValue) in entries.sorted(by: { $0.key < $1.key }) {
            guard let label = Int(labelText.trimmingCharacters(in: .whitespaces)) else {
                throw fail("label \"\(labelText)\" is not an integer")
            }
            guard (0...254).contains(label) else {
                throw fail("label \(label) is outside 0…254 (255 is the ignore label)")
            }
            guard let value = integer(rawValue) else { throw fail("value \(rawValue) of label \(label) is not an integer") }
            guard (0...255).contains(value) else { throw fail("value \(value) of label \(label) is outside 0…255") }
            guard value != Int(ignoreLabel) else {
                throw fail("label \(label) maps value 255, which is always the ignore label")
            }
            if let other = labelOfValue[value] {
                throw fail("value \(value) is mapped twice (labels \(other) and \(label))")
            }
            labelOfValue[value] = label
            table[UInt8(value)] = UInt8(label)
        }
        return .map(table)
    }

    /// An integer from a JSON number without fraction or a string of digits.
    private static func integer(_ any: Any) -> Int? {
        if let text = any as? String { return Int(text.trimmingCharacters(in: .whitespaces)) }
        if any is Bool, !(any is NSNumber) { return nil }
        if let number = any as? NSNumber {
            let double = number.doubleValue
            guard double.rounded() == double, abs(double) < 1e9 else { return nil }
            return Int(double)
        }
        return nil
    }
}

extension LabelMap: CustomStringConvertible {
    public var description: String {
        switch self {
        case .scale(let k): return k == 1 ? "identity (scale 1)" : "scale \(k)"
        case .map(let table):
            let pairs = table.sorted { $0.key < $1.key }.map { "\($0.key)→\($0.value)" }
            return "map " + pairs.joined(separator: ", ") + " (others → ignore)"
        }
    }
}
