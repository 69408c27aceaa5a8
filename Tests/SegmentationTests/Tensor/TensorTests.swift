@testable import Segmentation
import Testing

@Suite("Tensor")
struct TensorTests {
    @Test func copyOnWrite() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        var b = a
        b[flat: 0] = 10
        #expect(a.scalars == [1, 2, 3, 4, 5, 6], "writing a copy changed the original")
        #expect(b.scalars == [10, 2, 3, 4, 5, 6])
    }

    @Test func uniqueStorageIsWrittenInPlace() {
        var a = Tensor.zeros([4])
        let before = a.withUnsafeBufferPointer { $0.baseAddress! }
        a.withUnsafeMutableBufferPointer { $0[1] = 3 }
        let after = a.withUnsafeBufferPointer { $0.baseAddress! }
        #expect(before == after, "a uniquely held tensor was copied on write")
        #expect(a.scalars == [0, 3, 0, 0])
    }

    @Test(arguments: [1, 3, 17, 1000, 123_457])
    func storageIs64ByteAligned(_ count: Int) {
        let t = Tensor.zeros([count])
        let address = t.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress!) }
        #expect(address % 64 == 0)
    }

    @Test func reshapeKeepsScalarsAndSharesStorage() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = a.reshaped(to: [3, 2])
        #expect(b.shape == [3, 2] && b.scalars == a.scalars)
        #expect(a.withUnsafeBufferPointer { $0.baseAddress } == b.withUnsafeBufferPointer { $0.baseAddress })
    }

    @Test func shapeAccessorsAndDescription() {
        let s: Shape = [8, 2048, 60, 60]
        #expect(s.batch == 8 && s.channels == 2048 && s.height == 60 && s.width == 60)
        #expect(s.elementCount == 8 * 2048 * 3600)
        #expect(s.description == "[8, 2048, 60, 60]")
    }

    @Test func sinusoidMatchesItsFormula() {
        // The formula the fixture script reproduces in Python.
        let t = Tensor.sinusoid([5], frequency: 0.37, phase: 0.1, amplitude: 2)
        for i in 0..<5 {
            #expect(t[flat: i] == Float(2 * Foundation.sin(0.37 * Double(i) + 0.1)))
        }
    }

    @Test func seededDrawsAreReproducible() {
        var g1 = SplitMix64(seed: 9), g2 = SplitMix64(seed: 9), g3 = SplitMix64(seed: 10)
        let a = Tensor.normal([1001], using: &g1), b = Tensor.normal([1001], using: &g2), c = Tensor.normal([1001], using: &g3)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func normalAndKaimingMoments() {
        var generator = SplitMix64(seed: 1)
        let n = Tensor.normal([200_000], mean: 1, standardDeviation: 2, using: &generator).scalars.map(Double.init)
        let mean = n.reduce(0, +) / Double(n.count)
        let sd = (n.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n.count)).squareRoot()
        #expect(abs(mean - 1) < 0.02 && abs(sd - 2) < 0.02, "mean \(mean), sd \(sd)")
        // Kaiming fan-out: std √(2 / (K·R·S)) = √(2 / (64·9))
        let w = Tensor.kaimingNormal([64, 32, 3, 3], using: &generator).scalars.map(Double.init)
        let wsd = (w.map { $0 * $0 }.reduce(0, +) / Double(w.count)).squareRoot()
        #expect(abs(wsd - (2.0 / 576).squareRoot()) < 0.002, "Kaiming sd \(wsd)")
    }
}

import Foundation
