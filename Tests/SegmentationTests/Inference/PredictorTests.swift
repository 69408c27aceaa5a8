import Foundation
@testable import Segmentation
import SegmentationTestSupport
import Testing

/// The predictor, its answers (mask PNG, recordio-protobuf probabilities,
/// overlay) and the files `segment predict` writes.
@Suite("Predictor")
struct PredictorTests {
    /// A randomly initialised FCN ResNet-50 with 3 classes; its classifier
    /// bias is random so the classes do not all tie.
    static let model: SegmentationModel = {
        let configuration = NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .deep, classCount: 3, auxiliaryHead: true)
        var (network, parameters) = SegmentationNetwork.make(configuration, seed: 5)
        var generator = SplitMix64(seed: 6)
        parameters.put(parameters.id(named: "head.block.4.bias")!, Tensor.uniform([3], in: -0.5...0.5, using: &generator))
        return SegmentationModel(network: network, parameters: parameters, cropSize: 64)
    }()

    static func image(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var generator = SplitMix64(seed: seed)
        return RGBImage(width: width, height: height, pixels: (0..<width * height * 3).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The argmax over images whose planes span several of its parallel
    /// pieces (16384 pixels each): per pixel, the first class holding the
    /// largest logit (ties to the lower id, a NaN never wins), as a plain
    /// loop finds it.
    @Test func argmaxIsTheFirstLargestClassAcrossItsPieces() {
        let (n, c, h, w) = (2, 5, 131, 127)
        var generator = SplitMix64(seed: 9)
        var logits = Tensor.uniform([n, c, h, w], in: -1...1, using: &generator)
        let plane = h * w
        logits.withMutablePointer { z in
            for i in stride(from: 0, to: plane, by: 7) { z[3 * plane + i] = z[1 * plane + i] + 2; z[1 * plane + i] += 2 }  // ties of 1 and 3
            for i in stride(from: 3, to: plane, by: 11) { z[(c + 2) * plane + i] = .nan }  // image 1, class 2
        }
        let z = logits.scalars
        var expected = [UInt8](repeating: 0, count: n * plane)
        for image in 0..<n {
            for i in 0..<plane {
                var best = z[image * c * plane + i]
                for k in 1..<c where z[(image * c + k) * plane + i] > best {
                    best = z[(image * c + k) * plane + i]
                    expected[image * plane + i] = UInt8(k)
                }
            }
        }
        let classes = argmaxClasses(logits)
        #expect(classes == expected)
        #expect(classes[0] == 1 && classes[7] == 1, "a tie goes to the lower class id")
    }

    @Test func answersAtTheImagesOwnSizeAndTheMaskIsTheArgmaxOfTheProbabilities() throws {
        let predictor = Predictor(model: Self.model)
        let image = Self.image(width: 37, height: 29, seed: 1)
        let prediction = predictor.predict(image)
        #expect(prediction.logits.shape == [1, 3, 29, 37])
        let mask = prediction.mask
        #expect(mask.width == 37 && mask.height == 29)

        // The mask PNG decodes to the same ids; the recordio answer decodes to
        // probabilities whose per-pixel argmax is that mask and which sum to 1.
        let png = try ImageCodec.decodeAnnotation(ImageCodec.encodePNG(mask: mask), file: "mask.png")
        #expect(png.values == mask.values && png.width == 37 && png.height == 29)
        let decoded = try ProbabilityRecord.decode(ProbabilityRecord.encode(probabilities: prediction.probabilities), file: "answer.rec")
        #expect(decoded.count == 1)
        let probabilities = decoded[0]
        #expect(probabilities.shape == [1, 3, 29, 37])
        let p = probabilities.scalars, plane = 29 * 37
        var largestError: Float = 0
        for i in 0..<plane {
            let values = (0..<3).map { p[$0 * plane + i] }
            largestError = max(largestError, abs(values.reduce(0, +) - 1))
            #expect(values.firstIndex(of: values.max()!)! == Int(mask.values[i]))
        }
        #expect(largestError < 1e-5)
        // Not every pixel is one class: the test would pass vacuously otherwise.
        #expect(Set(mask.values).count > 1)
    }

    /// Evaluations of `boundedScratchPixels` or more bound the Winograd
    /// scratch: the workspace drops what a smaller image's whole transformed
    /// kernels grew (the FCN head's 2048 → 512: 36·512·2048 scalars) and the
    /// logits agree with the unbounded path's. A lent training workspace stays
    /// bounded whatever the image.
    @Test func largeImagesBoundTheWinogradScratch() throws {
        let wholeHeadKernels = 36 * 512 * 2048
        let workspace = Workspace()
        let predictor = Predictor(model: Self.model, lending: workspace, boundedScratchPixels: 48 * 48)
        _ = predictor.predict(Self.image(width: 40, height: 40, seed: 2))
        #expect(!workspace.boundsWinogradScratch && workspace.capacity >= wholeHeadKernels)

        let large = Self.image(width: 48, height: 48, seed: 3)
        let bounded = predictor.predict(large).logits
        #expect(workspace.boundsWinogradScratch)
        // Below the head's whole U alone (other layers' scratch remains).
        #expect(workspace.capacity < wholeHeadKernels, "capacity \(workspace.capacity)")
        let whole = Predictor(model: Self.model, boundedScratchPixels: .max).predict(large).logits
        let scale = whole.scalars.map(abs).max()!
        let largest = zip(bounded.scalars, whole.scalars).map { abs($0 - $1) }.max()!
        #expect(largest <= 1e-4 * scale, "bounded vs whole: \(largest) of \(scale)")

        _ = predictor.predict(Self.image(width: 40, height: 40, seed: 2))
        #expect(!workspace.boundsWinogradScratch, "a small image goes back to the whole scratch")

        let training = Workspace.training()
        _ = Predictor(model: Self.model, lending: training, boundedScratchPixels: 48 * 48).predict(Self.image(width: 40, height: 40, seed: 2))
        #expect(training.boundsWinogradScratch)
    }

    @Test func softmaxMatchesTheDefinition() {
        let logits = Tensor(shape: [2, 3, 1, 2], scalars: [1, 2, 0, -1, 3, 3, 90, -90, 1, 2, 3, 4])
        let p = softmaxOverClasses(logits).scalars
        for (n, i) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let z = (0..<3).map { Double(logits.scalars[n * 6 + $0 * 2 + i]) }
            let e = z.map { exp($0 - z.max()!) }
            for c in 0..<3 {
                #expect(abs(Double(p[n * 6 + c * 2 + i]) - e[c] / e.reduce(0, +)) < 1e-6)
            }
        }
    }

    @Test func aBatchGivesTheSameAnswersAsOneImageAtATime() {
        let predictor = Predictor(model: Self.model)
        let images = (0..<2).map { Self.image(width: 24, height: 16, seed: 10 + UInt64($0)) }
        let batch = Tensor(shape: [2, 3, 16, 24], scalars: images.flatMap { normalize($0, .imageNet).scalars })
        let together = predictor.predict(batch: batch)
        for (image, joint) in zip(images, together) {
            let alone = predictor.predict(image).logits
            let difference = zip(alone.scalars, joint.logits.scalars).map { abs($0 - $1) }.max()!
            #expect(difference < 1e-3 * maximumMagnitude(alone))
        }
    }

    @Test func concurrentCallsGiveTheSameAnswers() async {
        let predictor = Predictor(model: Self.model)
        let image = Self.image(width: 20, height: 20, seed: 3)
        let expected = predictor.predict(image).mask
        let masks = await withTaskGroup(of: ClassMask.self) { group in
            for _ in 0..<6 { group.addTask { predictor.predict(image).mask } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(masks.count == 6 && masks.allSatisfy { $0 == expected })
    }

    @Test func evaluationEqualsTheConfusionMatrixOfThePredictions() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        var names: [String] = []
        for index in 0..<3 {
            let image = Self.image(width: 30 + index, height: 26, seed: 20 + UInt64(index))
            try fixture.write(ImageCodec.encodePNG(rgb: image), to: "validation/v\(index).png")
            let labels = (0..<image.width * image.height).map { UInt8(($0 / 7 + index) % 3) }
            _ = try fixture.writeAnnotation("validation_annotation/v\(index).png", width: image.width, height: 26, values: labels)
            names.append("v\(index)")
        }
        let dataset = try ChannelDataset(dataDirectory: fixture.root, split: .validation)
        let predictor = Predictor(model: Self.model)
        var expected = ConfusionMatrix(classCount: 3)
        for sample in dataset.samples {
            let mask = try predictor.predict(contentsOf: sample.image).mask
            expected.add(predictions: mask.values, labels: try ImageCodec.decodeAnnotation(contentsOf: sample.annotation).values)
        }
        var reported: [Int] = []
        let matrix = try predictor.evaluate(dataset) { done, _ in reported.append(done) }
        #expect(matrix == expected && reported == [1, 2, 3])
        // Crops of 16 two at a time score 3 × 16 × 16 pixels.
        let cropped = try predictor.evaluate(dataset, batchSize: 2, cropSize: 16)
        #expect(cropped.labeledPixels == 3 * 16 * 16)
        // An imported model without a crop size cannot score crops unless told one.
        var imported = Self.model
        imported.cropSize = nil
        #expect(throws: EvaluationError.cropSizeUnknown) { try Predictor(model: imported).evaluate(dataset, batchSize: 2) }
    }

    @Test func predictionFilesAreNamedAfterTheInputAndNeverOverwriteIt() throws {
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let image = Self.image(width: 21, height: 13, seed: 4)
        let prediction = Predictor(model: Self.model).predict(image)
        let files = PredictionFiles(directory: fixture.url("out"), format: .recordIOProtobuf, overlay: true, classNames: ["bg", "a", "b"])
        let written = try files.write(prediction, of: image, name: "street")
        #expect(written.map(\.lastPathComponent) == ["street.rec", "street_overlay.png"])
        let overlay = try ImageCodec.decodeImage(contentsOf: written[1])
        #expect(overlay.width == 64 && overlay.height > 13)  // widened to the 64-pixel minimum

        #expect(throws: PredictionError.duplicateName(name: "x.rec", first: "/a/x.jpg", second: "/b/x.png")) {
            try files.checkInputs([URL(fileURLWithPath: "/a/x.jpg"), URL(fileURLWithPath: "/b/x.png")])
        }
        // Masks and overlays: a.jpg writes a_overlay.png, and so does a_overlay.jpg (its mask).
        let masks = PredictionFiles(directory: fixture.url("out"), format: .png, overlay: true)
        #expect(throws: PredictionError.duplicateName(name: "a_overlay.png", first: "/in/a.jpg", second: "/in/a_overlay.jpg")) {
            try masks.checkInputs([URL(fileURLWithPath: "/in/a.jpg"), URL(fileURLWithPath: "/in/a_overlay.jpg")])
        }
        let inPlace = PredictionFiles(directory: URL(fileURLWithPath: "/data"), format: .png)
        #expect(throws: PredictionError.wouldOverwriteInput("/data/x.png")) {
            try inPlace.checkInputs([URL(fileURLWithPath: "/data/x.png")])
        }
        try inPlace.checkInputs([URL(fileURLWithPath: "/data/x.jpg"), URL(fileURLWithPath: "/data/y.jpg")])
    }

    @Test func overlayTintsClassesBlendsByOpacityAndLegendsThePresentOnes() {
        let image = RGBImage(width: 4, height: 2, pixels: [UInt8](repeating: 100, count: 24))
        let mask = ClassMask(width: 4, height: 2, values: [0, 1, 1, 15, 0, 0, 1, 1])
        let picture = Overlay.render(image: image, mask: mask, classNames: ["background", "cat"], opacity: 0.5)
        // Widened to fit the longest legend entry, "0 background": a 10-pixel
        // swatch, 4 of gap, 12 characters of 6, 12 after, 4 of padding each side.
        #expect(picture.width == 10 + 4 + 72 + 12 + 8 && picture.height > 2)
        #expect(picture[x: 0, y: 0] == SIMD3(100, 100, 100))  // background stays untinted
        #expect(picture[x: 1, y: 0] == SIMD3(114, 50, 50))  // (100 + 128) / 2, (100 + 0) / 2
        #expect(picture[x: 3, y: 0] == SIMD3(146, 114, 114))  // class 15 is (192, 128, 128)
        #expect(Overlay.colour(ofClass: 0) == SIMD3(0, 0, 0))
        #expect(Overlay.colour(ofClass: 1) == SIMD3(128, 0, 0))
        #expect(Overlay.colour(ofClass: 2) == SIMD3(0, 128, 0))
        #expect(Overlay.colour(ofClass: 15) == SIMD3(192, 128, 128))  // VOC's "person"
        #expect(Overlay.colour(ofClass: 20) == SIMD3(0, 64, 128))  // VOC's "tv/monitor"
        // The legend shows the swatch of each present class: 0, 1 and 15.
        let legend = (2..<picture.height).flatMap { y in (0..<picture.width).map { picture[x: $0, y: y] } }
        #expect(legend.contains(SIMD3(128, 0, 0)) && legend.contains(SIMD3(192, 128, 128)) && !legend.contains(SIMD3(0, 128, 0)))
    }

    @Test(arguments: [
        (nil, PredictionFormat.png), ("", .png), ("*/*", .png), ("image/*", .png), ("image/png", .png),
        ("Image/PNG; q=0.5", .png), ("application/x-recordio-protobuf", .recordIOProtobuf),
        ("application/x-protobuf", .recordIOProtobuf), ("text/html, application/x-protobuf;q=0.9", .recordIOProtobuf),
        ("application/json", nil), ("text/csv, image/jpeg", nil), ("application/*", .recordIOProtobuf),
        ("image/png;q=0", nil), ("image/png; q=0.0, application/x-protobuf", .recordIOProtobuf),
    ] as [(String?, PredictionFormat?)])
    func acceptHeaders(_ accept: String?, _ expected: PredictionFormat?) {
        #expect(PredictionFormat(accept: accept) == expected)
    }
}
