import Foundation
@testable import Segmentation
import Testing

@Suite("Training curves")
struct TrainingCurvesTests {
    @Test func drawsBothPanelsAsAValidPNG() throws {
        let loss = [1.9, 1.2, 0.8, 0.65, 0.6], miou = [0.1, 0.3, 0.45, 0.52, 0.55], accuracy = [0.5, 0.7, 0.8, 0.84, 0.86]
        let bytes = try TrainingCurves.png(loss: loss, meanIoU: miou, pixelAccuracy: accuracy)
        let image = try ImageCodec.decodeImage(Data(bytes), file: "training-curves.png")
        #expect(image.width == TrainingCurves.width && image.height == TrainingCurves.height)
        // Each series' colour is present (the lines were drawn), in its own panel.
        func count(_ color: SIMD3<UInt8>, columns: Range<Int>) -> Int {
            var n = 0
            for y in 0..<image.height { for x in columns where image[x: x, y: y] == color { n += 1 } }
            return n
        }
        #expect(count([31, 119, 180], columns: 0..<480) > 200, "no loss line in the left panel")
        #expect(count([255, 127, 14], columns: 480..<960) > 200, "no mIOU line in the right panel")
        #expect(count([44, 160, 44], columns: 480..<960) > 200, "no pixel-accuracy line in the right panel")
        #expect(count([31, 119, 180], columns: 480..<960) == 0)
        // A single epoch and a NaN loss still draw without trapping.
        _ = TrainingCurves.render(loss: [.nan], meanIoU: [0], pixelAccuracy: [0])
    }
}
