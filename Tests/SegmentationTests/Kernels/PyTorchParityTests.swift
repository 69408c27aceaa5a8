import Foundation
import Segmentation
import SegmentationTestSupport
import Testing

/// Every kernel's forward (and its gradients, as a second witness beside the
/// finite-difference checks) against PyTorch 2.x on the committed fixture
/// file (Fixtures/generate_kernel_fixtures.py; inputs rebuilt from the
/// closed-form fills recorded in its metadata).
///
/// Tolerance: both sides compute in Float32 but sum in different orders, so
/// results differ by a few ulps of the largest partial sums. We allow
/// 1e-5 · max|expected| absolute plus 1e-5 relative: about 100 ulps of the
/// output's scale, far below any real error (a wrong tap or weight shifts
/// outputs by O(max|expected|)).
@Suite("PyTorch parity")
struct PyTorchParityTests {
    static let fixtures = KernelFixtures.shared

    func expectMatches(_ actual: Tensor, _ expected: Tensor?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let expected else {
            Issue.record("fixture lacks \(what)", sourceLocation: sourceLocation)
            return
        }
        expectClose(actual, expected, absoluteTolerance: 1e-5 * max(maximumMagnitude(expected), 1e-3),
                    relativeTolerance: 1e-5, what, sourceLocation: sourceLocation)
    }

    @Test("fixture file holds every case") func fixtureCoverage() {
        let ops = Set(Self.fixtures.caseNames.map { Self.fixtures.case($0).op })
        #expect(ops == ["conv2d", "batchnorm_training", "batchnorm_inference", "relu", "maxpool",
                        "adaptive_avgpool", "bilinear", "cross_entropy", "concatenate", "add"])
    }

    @Test(arguments: fixtures.cases(op: "conv2d").map(\.name))
    func convolution(_ name: String) {
        let c = Self.fixtures.case(name)
        let x = c.inputs["input"]!, w = c.inputs["weight"]!, b = c.inputs["bias"]
        let geometry = ConvGeometry(
            batch: x.shape.batch, inputChannels: x.shape.channels, outputChannels: w.shape[0],
            inputHeight: x.shape.height, inputWidth: x.shape.width, kernelSize: c.int("kernel"),
            stride: c.int("stride"), padding: c.int("padding"), dilation: c.int("dilation"))
        let y = conv2d(x, weight: w, bias: b, geometry: geometry)
        expectMatches(y, c.results["output"], "\(name) output")
        var dx: Tensor? = .zeros(x.shape), dw: Tensor? = .zeros(w.shape)
        var db: Tensor? = b.map { .zeros($0.shape) }
        conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db,
                       outputGradient: c.projection!, input: x, weight: w, geometry: geometry)
        expectMatches(dx!, c.results["grad_input"], "\(name) input gradient")
        expectMatches(dw!, c.results["grad_weight"], "\(name) weight gradient")
        if let db { expectMatches(db, c.results["grad_bias"], "\(name) bias gradient") }
    }

    @Test func batchNormTrainingMode() {
        let c = Self.fixtures.case("batchnorm_training")
        let x = c.inputs["input"]!, g = c.inputs["scale"]!, b = c.inputs["shift"]!
        let (y, statistics) = batchNormTraining(x, scale: g, shift: b)
        expectMatches(y, c.results["output"], "output")
        expectMatches(statistics.mean, c.results["mean"], "batch mean")
        expectMatches(statistics.variance, c.results["variance"], "batch variance (biased)")
        var dx: Tensor? = .zeros(x.shape), dg: Tensor? = .zeros(g.shape), db: Tensor? = .zeros(b.shape)
        batchNormTrainingBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db,
                                  outputGradient: c.projection!, input: x, scale: g, statistics: statistics)
        expectMatches(dx!, c.results["grad_input"], "input gradient")
        expectMatches(dg!, c.results["grad_scale"], "scale gradient")
        expectMatches(db!, c.results["grad_shift"], "shift gradient")
    }

    @Test func batchNormInferenceMode() {
        let c = Self.fixtures.case("batchnorm_inference")
        let x = c.inputs["input"]!, g = c.inputs["scale"]!, b = c.inputs["shift"]!
        let mean = c.inputs["running_mean"]!
        // The generator adds 1 to the running-variance fill so it is positive.
        let variance = Tensor(shape: c.inputs["running_variance"]!.shape,
                              scalars: c.inputs["running_variance"]!.scalars.map { $0 + 1 })
        let y = batchNormInference(x, scale: g, shift: b, runningMean: mean, runningVariance: variance)
        expectMatches(y, c.results["output"], "output")
        var dx: Tensor? = .zeros(x.shape), dg: Tensor? = .zeros(g.shape), db: Tensor? = .zeros(b.shape)
        batchNormInferenceBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db,
                                   outputGradient: c.projection!, input: x, scale: g,
                                   runningMean: mean, runningVariance: variance)
        expectMatches(dx!, c.results["grad_input"], "input gradient")
        expectMatches(dg!, c.results["grad_scale"], "scale gradient")
        expectMatches(db!, c.results["grad_shift"], "shift gradient")
    }

    @Test func reluMatches() {
        let c = Self.fixtures.case("relu")
        let x = c.inputs["input"]!
        let y = relu(x)
        expectMatches(y, c.results["output"], "output")
        var dx = Tensor.zeros(x.shape)
        reluBackward(inputGradient: &dx, outputGradient: c.projection!, output: y)
        expectMatches(dx, c.results["grad_input"], "input gradient")
    }

    @Test(arguments: fixtures.cases(op: "maxpool").map(\.name))
    func maxPooling(_ name: String) {
        let c = Self.fixtures.case(name)
        let x = c.inputs["input"]!
        let (y, indices) = maxPool(x, geometry: PoolGeometry(kernelSize: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding")))
        expectMatches(y, c.results["output"], "\(name) output")
        var dx = Tensor.zeros(x.shape)
        maxPoolBackward(inputGradient: &dx, outputGradient: c.projection!, indices: indices)
        expectMatches(dx, c.results["grad_input"], "\(name) input gradient")
    }

    @Test(arguments: fixtures.cases(op: "adaptive_avgpool").map(\.name))
    func adaptiveAveragePooling(_ name: String) {
        let c = Self.fixtures.case(name)
        let x = c.inputs["input"]!
        let bins = c.int("bins")
        let y = adaptiveAveragePool(x, outputHeight: bins, outputWidth: bins)
        expectMatches(y, c.results["output"], "\(name) output")
        var dx = Tensor.zeros(x.shape)
        adaptiveAveragePoolBackward(inputGradient: &dx, outputGradient: c.projection!)
        expectMatches(dx, c.results["grad_input"], "\(name) input gradient")
    }

    @Test(arguments: fixtures.cases(op: "bilinear").map(\.name))
    func bilinear(_ name: String) {
        let c = Self.fixtures.case(name)
        let x = c.inputs["input"]!
        let y = bilinearResize(x, height: c.int("height"), width: c.int("width"))
        expectMatches(y, c.results["output"], "\(name) output")
        var dx = Tensor.zeros(x.shape)
        bilinearResizeBackward(inputGradient: &dx, outputGradient: c.projection!)
        expectMatches(dx, c.results["grad_input"], "\(name) input gradient")
    }

    @Test func crossEntropy() {
        let c = Self.fixtures.case("cross_entropy")
        let z = c.inputs["logits"]!
        let labels = (c.record["labels"] as! [NSNumber]).map { UInt8($0.intValue) }
        let (loss, valid) = softmaxCrossEntropy(logits: z, labels: labels)
        #expect(valid == labels.filter { $0 != 255 }.count)
        expectMatches(Tensor(shape: [1], scalars: [loss]), c.results["loss"], "loss")
        var dz = Tensor.zeros(z.shape)
        softmaxCrossEntropyBackward(logitsGradient: &dz, logits: z, labels: labels)
        expectMatches(dz, c.results["grad_logits"], "logits gradient")
    }

    @Test func concatenation() {
        let c = Self.fixtures.case("concatenate")
        let parts = ["a", "b", "c"].map { c.inputs[$0]! }
        let y = concatenateChannels(parts)
        expectMatches(y, c.results["output"], "output")
        var gradients = parts.map { Tensor.zeros($0.shape) }
        concatenateChannelsBackward(inputGradients: &gradients, outputGradient: c.projection!)
        for (key, gradient) in zip(["a", "b", "c"], gradients) {
            expectMatches(gradient, c.results["grad_" + key], "gradient of \(key)")
        }
    }

    @Test func residualAdd() {
        let c = Self.fixtures.case("add")
        let a = c.inputs["a"]!, b = c.inputs["b"]!
        expectMatches(add(a, b), c.results["output"], "output")
        var da = Tensor.zeros(a.shape)
        accumulate(&da, c.projection!)
        expectMatches(da, c.results["grad_a"], "gradient of a")
        expectMatches(da, c.results["grad_b"], "gradient of b")
    }
}
