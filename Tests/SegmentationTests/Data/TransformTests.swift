@testable import Segmentation
import Testing

/// SPEC §3 transforms: geometry, label hygiene, randomness, normalization.
@Suite struct TransformTests {
    // MARK: Fixtures

    /// A deterministic textured image (so crops and flips are distinguishable).
    static func image(width: Int, height: Int, seed: UInt64 = 1) -> RGBImage {
        var g = SplitMix64(seed: seed)
        return RGBImage(width: width, height: height,
                        pixels: (0..<(width * height * 3)).map { _ in UInt8.random(in: 0...254, using: &g) })
    }

    /// Class ids drawn from `classes`, blocky so nearest resizing has structure.
    static func labels(width: Int, height: Int, classes: [UInt8] = [0, 1, 2, 7]) -> [UInt8] {
        (0..<(width * height)).map { i in classes[((i % width) / 3 + (i / width) / 5) % classes.count] }
    }

    /// ImageNet's −mean/std: what a padded (0-valued) pixel normalizes to.
    static let paddedValue: [Float] = (0..<3).map { -Normalization.imageNet.mean[$0] / Normalization.imageNet.std[$0] }

    // MARK: Training output

    @Test(arguments: [(200, 150), (300, 700), (40, 30), (256, 256)])
    func trainingSamplesAreCropSized(size: (Int, Int)) {
        let transform = TrainingTransform(baseSize: 256, cropSize: 256)
        let image = Self.image(width: size.0, height: size.1)
        let labels = Self.labels(width: size.0, height: size.1)
        var g = SplitMix64(seed: 42)
        for _ in 0..<8 {
            let (tensor, out) = transform(image: image, labels: labels, using: &g)
            #expect(tensor.shape == [3, 256, 256])
            #expect(out.count == 256 * 256)
            #expect(Set(out).isSubset(of: Set(labels).union([255])))
        }
    }

    @Test func smallImagesArePaddedWithIgnoreAndBlack() {
        // 40×30 with base 520: the long side is ≥ 260 so the short side is ≥ 195 —
        // make the crop larger than that to force padding of both label and image.
        let transform = TrainingTransform(baseSize: 520, cropSize: 1048)
        let image = RGBImage(width: 40, height: 30, pixels: [UInt8](repeating: 200, count: 40 * 30 * 3))
        let labels = [UInt8](repeating: 3, count: 40 * 30)
        var g = SplitMix64(seed: 7)
        var sawPadding = false
        for _ in 0..<6 {
            let (tensor, out) = transform(image: image, labels: labels, using: &g)
            #expect(tensor.shape == [3, 1048, 1048])
            #expect(Set(out).isSubset(of: [3, 255]))
            let scalars = tensor.scalars
            let plane = 1048 * 1048
            // Crop origin is (0, 0) whenever padding made the image exactly the crop in that axis;
            // the bottom-right pixel is always padding here (short side ≤ 780 < 1048).
            let corner = plane - 1
            #expect(out[corner] == 255)
            for c in 0..<3 {
                // Blur may mix 200 into pad pixels near the border, never at the far corner.
                #expect(abs(scalars[c * plane + corner] - Self.paddedValue[c]) < 1e-5)
            }
            // Every ignore pixel in the labels is a padded (black) pixel in the image, away from the seam.
            for i in stride(from: 0, to: plane, by: 997) where out[i] == 255 {
                let (x, y) = (i % 1048, i / 1048)
                // The blur (radius < 1, reach ≤ 3) can pull image values into the 3-pixel band.
                let nearSeam = (max(0, y - 3)...y).contains { ys in
                    (max(0, x - 3)...x).contains { xs in out[ys * 1048 + xs] != 255 }
                }
                if !nearSeam {
                    sawPadding = true
                    #expect(abs(scalars[i] - Self.paddedValue[0]) < 1e-5)
                }
            }
        }
        #expect(sawPadding)
    }

    @Test func tinyImageWithSmallCropStillCropSized() {
        // The case: 40×30, base 520, crop 64 (no padding needed after the
        // rescale, but the output is still crop×crop and labels stay clean).
        let transform = TrainingTransform(baseSize: 520, cropSize: 64)
        let image = Self.image(width: 40, height: 30)
        let labels = Self.labels(width: 40, height: 30)
        var g = SplitMix64(seed: 3)
        for _ in 0..<20 {
            let (tensor, out) = transform(image: image, labels: labels, using: &g)
            #expect(tensor.shape == [3, 64, 64])
            #expect(Set(out).isSubset(of: Set(labels).union([255])))
        }
    }

    @Test func paddingFillsLabelsWith255AndImageWithZero() {
        let sample = LabelledSample(image: Self.image(width: 5, height: 3), labels: Self.labels(width: 5, height: 3))
        let padded = sample.padded(width: 8, height: 6)
        #expect(padded.width == 8 && padded.height == 6)
        for y in 0..<6 {
            for x in 0..<8 {
                if x < 5 && y < 3 {
                    #expect(padded.labels[y * 8 + x] == sample.labels[y * 5 + x])
                    #expect(padded.image[x: x, y: y] == sample.image[x: x, y: y])
                } else {
                    #expect(padded.labels[y * 8 + x] == 255)
                    #expect(padded.image[x: x, y: y] == SIMD3(0, 0, 0))
                }
            }
        }
    }

    // MARK: Scale step

    @Test func longSideStaysInRange() {
        let transform = TrainingTransform(baseSize: 520, cropSize: 480)
        #expect(transform.longSideRange == 260...1040)
        var g = SplitMix64(seed: 11)
        var seen = Set<Int>()
        for draw in 0..<5000 {
            let long = transform.drawLongSide(using: &g)
            #expect(transform.longSideRange.contains(long))
            seen.insert(long)
            let (w, h) = draw % 2 == 0 ? (500, 375) : (333, 500)
            let size = TrainingTransform.scaledSize(width: w, height: h, longSide: long)
            #expect(max(size.width, size.height) == long)
            // The short side keeps the aspect ratio, rounded half up.
            let expectedShort = Int(Double(min(w, h)) * Double(long) / Double(max(w, h)) + 0.5)
            #expect(min(size.width, size.height) == expectedShort)
        }
        // Both ends are reachable (inclusive randint): 781 values, 5000 draws.
        #expect(seen.contains(260) && seen.contains(1040))
    }

    @Test func oddBaseSizeFloorsBounds() {
        #expect(TrainingTransform(baseSize: 521, cropSize: 480).longSideRange == 260...1042)
    }

    // MARK: Randomness

    @Test func mirrorFrequencyIsOneHalf() {
        // A 2×1 image, base 4 (long side 2…8), crop 8: the rescaled image never exceeds
        // 8×8, so after padding the crop is the whole padded image at (0, 0) and label
        // (0, 0) is the left input label (1) unmirrored, the right one (2) mirrored.
        let transform = TrainingTransform(baseSize: 4, cropSize: 8)
        let image = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 254, 254, 254])
        let labels: [UInt8] = [1, 2]
        var g = SplitMix64(seed: 2024)
        let draws = 4000
        var mirrored = 0
        for _ in 0..<draws {
            let (_, out) = transform(image: image, labels: labels, using: &g)
            if out[0] == 2 { mirrored += 1 }
        }
        // Binomial(4000, 0.5): sd ≈ 31.6; ±5 sd = ±158 fails by chance with p < 1e-6.
        #expect(abs(mirrored - draws / 2) < 158, "mirrored \(mirrored) of \(draws)")
    }

    @Test func sameSeedSameBytesDifferentSeedDifferent() {
        let transform = TrainingTransform(baseSize: 128, cropSize: 96)
        let image = Self.image(width: 120, height: 90)
        let labels = Self.labels(width: 120, height: 90)
        func run(_ seed: UInt64) -> ([Float], [UInt8]) {
            var g = SplitMix64(seed: seed)
            var scalars: [Float] = [], out: [UInt8] = []
            for _ in 0..<4 {
                let (t, l) = transform(image: image, labels: labels, using: &g)
                scalars += t.scalars
                out += l
            }
            return (scalars, out)
        }
        let a = run(5), b = run(5), c = run(6)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0 != c.0)
    }

    // MARK: Validation

    @Test func validationCropIsCenteredAndCropSized() {
        // 300×200 → short side 100: 150×100, crop 100 at x = round(25) = 25.
        #expect(ValidationTransform.geometry(width: 300, height: 200, cropSize: 100) == (150, 100, 25, 0))
        // Python round is half-to-even: 101 wide, crop 100 → (101−100)/2 = 0.5 → 0; 103 → 1.5 → 2.
        #expect(ValidationTransform.geometry(width: 101, height: 100, cropSize: 100).x == 0)
        #expect(ValidationTransform.geometry(width: 103, height: 100, cropSize: 100).x == 2)
        // Portrait: 200×333 → 100×167 (166.5 rounds up), y = round(33.5) = 34.
        #expect(ValidationTransform.geometry(width: 200, height: 333, cropSize: 100) == (100, 167, 0, 34))

        // Center position: a same-size resize is the identity, so the crop must equal
        // the middle window of the input.
        let image = Self.image(width: 64, height: 40)
        let labels = Self.labels(width: 64, height: 40)
        let transform = ValidationTransform(cropSize: 40)
        let (tensor, out) = transform(image: image, labels: labels)
        #expect(tensor.shape == [3, 40, 40])
        #expect(out == LabelGrid.cropped(labels, width: 64, height: 40, x: 12, y: 0, toWidth: 40, toHeight: 40))
        #expect(tensor == normalize(image.cropped(x: 12, y: 0, width: 40, height: 40), .imageNet))

        let (big, bigLabels) = ValidationTransform(cropSize: 96)(image: image, labels: labels)
        #expect(big.shape == [3, 96, 96])
        #expect(Set(bigLabels).isSubset(of: Set(labels)))
    }

    @Test func validationWholeImageKeepsSize() {
        let image = Self.image(width: 37, height: 23)
        let labels = Self.labels(width: 37, height: 23)
        let (tensor, out) = ValidationTransform(cropSize: nil)(image: image, labels: labels)
        #expect(tensor.shape == [3, 23, 37])
        #expect(out == labels)
        #expect(tensor == normalize(image, .imageNet))
    }

    // MARK: Byte helpers

    @Test(arguments: [(7, 5, 19, 3), (30, 20, 11, 47), (9, 9, 9, 9), (1, 1, 4, 6)])
    func nearestResizeNeverInventsLabels(sizes: (Int, Int, Int, Int)) {
        let labels = Self.labels(width: sizes.0, height: sizes.1, classes: [4, 9, 255, 13])
        let out = LabelGrid.resizedNearest(labels, width: sizes.0, height: sizes.1, toWidth: sizes.2, toHeight: sizes.3)
        #expect(out.count == sizes.2 * sizes.3)
        #expect(Set(out).isSubset(of: Set(labels)))
        if sizes.0 == sizes.2 && sizes.1 == sizes.3 { #expect(out == labels) }
    }

    @Test func nearestResizeFollowsPillowIndexing() {
        // src = ⌊(dst + 0.5)·in/out⌋: 4 → 3 picks 0, 2, 3; 3 → 4 picks 0, 1, 1, 2.
        #expect(LabelGrid.resizedNearest([10, 11, 12, 13], width: 4, height: 1, toWidth: 3, toHeight: 1) == [10, 12, 13])
        #expect(LabelGrid.resizedNearest([10, 11, 12], width: 3, height: 1, toWidth: 4, toHeight: 1) == [10, 11, 11, 12])
    }

    @Test func bilinearResizeMatchesPillowByHand() {
        func gray(_ values: [UInt8], width: Int) -> RGBImage {
            RGBImage(width: width, height: 1, pixels: values.flatMap { [$0, $0, $0] })
        }
        func red(_ image: RGBImage) -> [UInt8] { stride(from: 0, to: image.pixels.count, by: 3).map { image.pixels[$0] } }
        // Upscale 2 → 4, half-pixel centers: [p0, .75p0+.25p1, .25p0+.75p1, p1].
        #expect(red(gray([0, 100], width: 2).resized(width: 4, height: 1)) == [0, 25, 75, 100])
        // Downscale 4 → 2 with Pillow's widened support (antialias): output 0 weighs
        // inputs 0, 1, 2 by .75, .75, .25 → (30 + 20)/1.75 = 28.57 → 29.
        #expect(red(gray([0, 40, 80, 120], width: 4).resized(width: 2, height: 1)) == [29, 91])
        // Same size is the identity; constant images stay constant at any size.
        let textured = Self.image(width: 13, height: 7)
        #expect(textured.resized(width: 13, height: 7) == textured)
        let flat = RGBImage(width: 9, height: 5, pixels: [UInt8](repeating: 77, count: 135))
        #expect(flat.resized(width: 4, height: 17).pixels.allSatisfy { $0 == 77 })
    }

    @Test func mirrorAndCrop() {
        let image = Self.image(width: 6, height: 4)
        let mirrored = image.mirrored()
        for y in 0..<4 { for x in 0..<6 { #expect(mirrored[x: x, y: y] == image[x: 5 - x, y: y]) } }
        #expect(mirrored.mirrored() == image)
        let labels = Self.labels(width: 6, height: 4)
        #expect(LabelGrid.mirrored(LabelGrid.mirrored(labels, width: 6, height: 4), width: 6, height: 4) == labels)
        let crop = image.cropped(x: 2, y: 1, width: 3, height: 2)
        for y in 0..<2 { for x in 0..<3 { #expect(crop[x: x, y: y] == image[x: x + 2, y: y + 1]) } }
    }

    @Test func blurRadiusZeroIsIdentity() {
        let image = Self.image(width: 17, height: 11)
        #expect(image.gaussianBlurred(radius: 0) == image)
    }

    @Test func blurSmoothsAndPreservesConstants() {
        let flat = RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 90, count: 192))
        #expect(flat.gaussianBlurred(radius: 0.8) == flat)
        // A single bright pixel spreads symmetrically and loses peak height.
        var pixels = [UInt8](repeating: 0, count: 9 * 9 * 3)
        pixels[(4 * 9 + 4) * 3] = 255
        let blurred = RGBImage(width: 9, height: 9, pixels: pixels).gaussianBlurred(radius: 0.9)
        #expect(blurred[x: 4, y: 4].x < 255 && blurred[x: 4, y: 4].x > 0)
        #expect(blurred[x: 3, y: 4] == blurred[x: 5, y: 4])
        #expect(blurred[x: 4, y: 3] == blurred[x: 4, y: 5])
        #expect(blurred[x: 3, y: 4].x > 0)
    }

    // MARK: Normalization

    @Test func normalizationOfKnownPixel() {
        let image = RGBImage(width: 2, height: 1, pixels: [255, 128, 0, 10, 20, 30])
        let tensor = normalize(image, .imageNet)
        #expect(tensor.shape == [3, 1, 2])
        let mean = Normalization.imageNet.mean, std = Normalization.imageNet.std
        let bytes: [[Float]] = [[255, 10], [128, 20], [0, 30]]  // [channel][x]
        for c in 0..<3 {
            for x in 0..<2 {
                let expected = (bytes[c][x] / 255 - mean[c]) / std[c]
                // Float32 with the division folded into one multiply: a few ulps of ~2.
                #expect(abs(tensor[flat: c * 2 + x] - expected) < 1e-5)
            }
        }
    }
}
