import Foundation
@testable import Segmentation
import Testing

@Suite struct LabelMapTests {
    func parse(_ json: String) throws -> LabelMap { try LabelMap.parse(Data(json.utf8), file: "lm.json") }

    @Test func defaultIsIdentity() {
        #expect(LabelMap.identity == .scale(1))
        #expect(LabelMap.identity.lookupTable == (0...255).map { UInt8($0) })
    }

    @Test func scaleThreeFromSpec() throws {
        for json in [#"{"scale": 3}"#, #"{"scale": "3"}"#] {
            let map = try parse(json)
            #expect(map == .scale(3))
            let mask = ClassMask(width: 4, height: 1, values: [0, 3, 6, 255])
            #expect(try map.apply(to: mask, classCount: 3, file: "a.png") == [0, 1, 2, 255])
            #expect(map.lookupTable[5] == 1 && map.lookupTable[254] == 84)
        }
    }

    @Test func mapFromSpec() throws {
        let map = try parse(#"{"map": {"0": 5, "1": 0, "2": "2"}}"#)
        #expect(map == .map([5: 0, 0: 1, 2: 2]))
        let mask = ClassMask(width: 5, height: 1, values: [5, 0, 2, 7, 255])
        #expect(try map.apply(to: mask, classCount: 3, file: "a.png") == [0, 1, 2, 255, 255])
    }

    @Test(arguments: [
        (#"{"scale": 0}"#, "scale must be ≥ 1"),
        (#"{"scale": "x"}"#, "not an integer"),
        (#"{"scale": 1.5}"#, "not an integer"),
        (#"{"map": {"0": 1, "1": 1}}"#, "value 1 is mapped twice"),
        (#"{"map": {"255": 1}}"#, "label 255 is outside"),
        (#"{"map": {"0": 300}}"#, "value 300 of label 0 is outside"),
        (#"{"map": {"0": 255}}"#, "maps value 255"),
        (#"{"scale": 1, "map": {}}"#, "exactly one of"),
        (#"{"scale": 1"#, "not valid JSON"),
        (#"[1]"#, "not a JSON object"),
    ])
    func malformed(json: String, fragment: String) {
        do {
            _ = try parse(json)
            Issue.record("\(json) parsed")
        } catch {
            let text = String(describing: error)
            #expect(text.hasPrefix("lm.json: malformed label map"), "\(text)")
            #expect(text.contains(fragment), "\(text)")
        }
    }

    @Test func outOfRangeNamesFileValueAndCount() {
        let mask = ClassMask(width: 3, height: 2, values: [0, 7, 7, 9, 255, 1])
        #expect(throws: DatasetError.labelOutOfRange(file: "x.png", value: 7, pixelCount: 2, classCount: 5)) {
            try LabelMap.identity.apply(to: mask, classCount: 5, file: "x.png")
        }
        let text = DatasetError.labelOutOfRange(file: "x.png", value: 7, pixelCount: 2, classCount: 5).description
        #expect(text.contains("x.png") && text.contains("2 pixels") && text.contains("label 7"))
    }

    @Test func histogramCountsIgnore() {
        let mask = ClassMask(width: 4, height: 1, values: [0, 3, 4, 255])
        let counts = LabelMap.scale(3).histogram(of: mask)
        #expect(counts[0] == 1 && counts[1] == 2 && counts[255] == 1 && counts.reduce(0, +) == 4)
    }
}
