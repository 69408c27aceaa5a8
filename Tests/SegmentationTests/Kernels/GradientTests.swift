import Segmentation
import SegmentationTestSupport
import Testing

/// Every backward against central finite differences (Double accumulation of
/// the probed scalar; see `checkGradients`).
///
/// Tolerances, by kind of op:
/// - Linear ops (convolution, pooling, resize, concatenation, add, dropout with
///   its mask fixed by the seed) have no truncation error, so a large step
///   (ε = 0.25) leaves only Float32 rounding of the forward, ~1e-6 of the
///   gradient scale: we allow 1e-4 of scale plus 1e-4 relative.
/// - Smooth nonlinear ops (batch norm, softmax cross-entropy) use ε = 1e-2:
///   truncation error O(ε²) ~ 1e-4 relative plus rounding ~1e-7·|L|/ε: we
///   allow 2e-3 of scale plus 2e-3 relative. A wrong term in a backward
///   formula shows up as an O(1) relative error, far above either bound.
/// - ReLU and max pool are piecewise linear: their inputs are kept at least
///   4ε away from ReLU's kink at 0 and from ties within a pooling window, so a
///   perturbation never crosses a kink or changes the argmax, and the check is
///   then exact like a linear op's.
@Suite("Finite-difference gradients")
struct GradientTests {
    struct ConvCase: CustomTestStringConvertible, Sendable {
        var n, c, k, h, w, kernel, stride, padding, dilation: Int
        var bias: Bool
        var testDescription: String {
            "N\(n) C\(c)→\(k) \(h)×\(w) k\(kernel) s\(stride) p\(padding) d\(dilation)\(bias ? " bias" : "")"
        }
        var geometry: ConvGeometry {
            ConvGeometry(batch: n, inputChannels: c, outputChannels: k, inputHeight: h, inputWidth: w,
                         kernelSize: kernel, stride: stride, padding: padding, dilation: dilation)
        }
    }

    /// Odd sizes, stride 2, dilation 2 and 4, padding 0 and > 0, batch 1–3
    /// (batch 1 splits one GEMM over the workers, 2 deals images to workers,
    /// 3 does both), pointwise and strided 1×1.
    static let convCases: [ConvCase] = [
        .init(n: 2, c: 3, k: 4, h: 7, w: 9, kernel: 3, stride: 1, padding: 1, dilation: 1, bias: true),
        .init(n: 1, c: 5, k: 6, h: 11, w: 10, kernel: 3, stride: 2, padding: 1, dilation: 1, bias: false),
        .init(n: 3, c: 4, k: 3, h: 9, w: 9, kernel: 3, stride: 1, padding: 2, dilation: 2, bias: true),
        .init(n: 2, c: 3, k: 2, h: 13, w: 12, kernel: 3, stride: 1, padding: 4, dilation: 4, bias: false),
        .init(n: 3, c: 2, k: 3, h: 6, w: 5, kernel: 3, stride: 1, padding: 0, dilation: 1, bias: true),
        .init(n: 2, c: 6, k: 5, h: 5, w: 7, kernel: 1, stride: 1, padding: 0, dilation: 1, bias: true),
        .init(n: 3, c: 4, k: 3, h: 8, w: 7, kernel: 1, stride: 2, padding: 0, dilation: 1, bias: false),
        .init(n: 1, c: 3, k: 4, h: 15, w: 13, kernel: 7, stride: 2, padding: 3, dilation: 1, bias: false),
    ]

    @Test(arguments: convCases)
    func convolution(_ t: ConvCase) {
        let g = t.geometry
        var inputs = [Tensor.sinusoid(g.inputShape, frequency: 0.37, phase: 0.1),
                      Tensor.sinusoid(g.weightShape, frequency: 0.53, phase: 0.7, amplitude: 0.5)]
        if t.bias { inputs.append(.sinusoid([t.k], frequency: 1.3, phase: 0.2)) }
        let workspace = Workspace()
        checkGradients(
            inputs: inputs, epsilon: 0.25, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { conv2d($0[0], weight: $0[1], bias: t.bias ? $0[2] : nil, geometry: g, workspace: workspace) },
            backward: { inputs, dy in
                var dx: Tensor? = .zeros(inputs[0].shape), dw: Tensor? = .zeros(inputs[1].shape)
                var db: Tensor? = t.bias ? .zeros([t.k]) : nil
                conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db,
                               outputGradient: dy, input: inputs[0], weight: inputs[1], geometry: g, workspace: workspace)
                return [dx!, dw!] + (db.map { [$0] } ?? [])
            })
    }

    @Test func convolutionBackwardAccumulates() {
        // Backward adds into existing gradients rather than overwriting them.
        let g = Self.convCases[0].geometry
        let x = Tensor.sinusoid(g.inputShape, frequency: 0.37), w = Tensor.sinusoid(g.weightShape, frequency: 0.53)
        let dy = Tensor.sinusoid(g.outputShape, frequency: 0.71)
        var dx1: Tensor? = .zeros(g.inputShape), dw1: Tensor? = .zeros(g.weightShape), db1: Tensor? = .zeros([g.outputChannels])
        conv2dBackward(inputGradient: &dx1, weightGradient: &dw1, biasGradient: &db1, outputGradient: dy, input: x, weight: w, geometry: g)
        var dx2: Tensor? = Tensor(shape: g.inputShape, repeating: 1), dw2: Tensor? = Tensor(shape: g.weightShape, repeating: 1)
        var db2: Tensor? = Tensor(shape: [g.outputChannels], repeating: 1)
        conv2dBackward(inputGradient: &dx2, weightGradient: &dw2, biasGradient: &db2, outputGradient: dy, input: x, weight: w, geometry: g)
        for (once, onTopOfOnes) in [(dx1!, dx2!), (dw1!, dw2!), (db1!, db2!)] {
            expectClose(onTopOfOnes, Tensor(shape: once.shape, scalars: once.scalars.map { $0 + 1 }),
                        absoluteTolerance: 1e-5, relativeTolerance: 1e-6)
        }
    }

    @Test(arguments: [(2, 3, 5, 7), (3, 2, 4, 3), (1, 4, 6, 5)])
    func batchNormTraining(_ shape: (Int, Int, Int, Int)) {
        let (n, c, h, w) = shape
        let inputs = [Tensor.sinusoid([n, c, h, w], frequency: 0.29, phase: 0.4, amplitude: 2),
                      Tensor.sinusoid([c], frequency: 1.1, phase: 0.5, amplitude: 1.5),
                      Tensor.sinusoid([c], frequency: 0.9, phase: 0.1, amplitude: 0.5)]
        checkGradients(
            inputs: inputs, epsilon: 1e-2, absoluteTolerance: 2e-3, relativeTolerance: 2e-3,
            forward: { Segmentation.batchNormTraining($0[0], scale: $0[1], shift: $0[2]).output },
            backward: { inputs, dy in
                let statistics = Segmentation.batchNormTraining(inputs[0], scale: inputs[1], shift: inputs[2]).statistics
                var dx: Tensor? = .zeros(inputs[0].shape), dg: Tensor? = .zeros([c]), db: Tensor? = .zeros([c])
                batchNormTrainingBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db,
                                          outputGradient: dy, input: inputs[0], scale: inputs[1], statistics: statistics)
                return [dx!, dg!, db!]
            })
    }

    @Test func batchNormInference() {
        let mean = Tensor.sinusoid([3], frequency: 0.6, phase: 0.9, amplitude: 0.3)
        let variance = Tensor(shape: [3], scalars: [0.5, 1.5, 2.25])
        let inputs = [Tensor.sinusoid([2, 3, 4, 5], frequency: 0.31, phase: 0.2, amplitude: 1.5),
                      Tensor.sinusoid([3], frequency: 1.7, phase: 0.5, amplitude: 1.2),
                      Tensor.sinusoid([3], frequency: 0.8, phase: 0.3, amplitude: 0.4)]
        checkGradients(
            inputs: inputs, epsilon: 0.25, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { Segmentation.batchNormInference($0[0], scale: $0[1], shift: $0[2], runningMean: mean, runningVariance: variance) },
            backward: { inputs, dy in
                var dx: Tensor? = .zeros(inputs[0].shape), dg: Tensor? = .zeros([3]), db: Tensor? = .zeros([3])
                batchNormInferenceBackward(inputGradient: &dx, scaleGradient: &dg, shiftGradient: &db, outputGradient: dy,
                                           input: inputs[0], scale: inputs[1], runningMean: mean, runningVariance: variance)
                return [dx!, dg!, db!]
            })
    }

    @Test func reluAwayFromKink() {
        // |x| ≥ 0.05 everywhere and ε = 0.01: no perturbation crosses 0.
        let x = Tensor.sinusoid([2, 3, 5, 7], frequency: 0.77, phase: 0.05)
        let shifted = Tensor(shape: x.shape, scalars: x.scalars.map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 })
        checkGradients(
            inputs: [shifted], epsilon: 0.01, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { relu($0[0]) },
            backward: { inputs, dy in
                var dx = Tensor.zeros(inputs[0].shape)
                reluBackward(inputGradient: &dx, outputGradient: dy, output: relu(inputs[0]))
                return [dx]
            })
    }

    /// Distinct values 0.05 apart in a seeded random order: no two cells of a
    /// window are within 2ε = 0.02 of each other, so the argmax never moves.
    static func tieFreeInput(_ shape: Shape, seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        let values = (0..<shape.elementCount).map { Float($0) * 0.05 - 1 }.shuffled(using: &generator)
        return Tensor(shape: shape, scalars: values)
    }

    @Test(arguments: [(2, 3, 9, 11), (1, 2, 8, 8), (2, 1, 5, 4), (1, 1, 1, 1)])
    func maxPoolWithoutTies(_ shape: (Int, Int, Int, Int)) {
        let (n, c, h, w) = shape
        checkGradients(
            inputs: [Self.tieFreeInput([n, c, h, w], seed: 7)], epsilon: 0.01, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { maxPool($0[0]).output },
            backward: { inputs, dy in
                var dx = Tensor.zeros(inputs[0].shape)
                maxPoolBackward(inputGradient: &dx, outputGradient: dy, indices: maxPool(inputs[0]).indices)
                return [dx]
            })
    }

    @Test(arguments: [(1, 7, 9), (2, 7, 9), (3, 7, 9), (6, 7, 9), (6, 5, 4), (2, 1, 1)])
    func adaptiveAveragePool(_ setup: (Int, Int, Int)) {
        let (bins, h, w) = setup
        checkGradients(
            inputs: [.sinusoid([2, 2, h, w], frequency: 0.43, phase: 0.6)], epsilon: 0.25,
            absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { Segmentation.adaptiveAveragePool($0[0], outputHeight: bins, outputWidth: bins) },
            backward: { inputs, dy in
                var dx = Tensor.zeros(inputs[0].shape)
                adaptiveAveragePoolBackward(inputGradient: &dx, outputGradient: dy)
                return [dx]
            })
    }

    @Test(arguments: [(5, 7, 9, 13), (7, 9, 4, 5), (1, 1, 3, 4), (5, 6, 1, 1), (4, 4, 4, 4), (6, 3, 2, 8), (1, 5, 3, 1)])
    func bilinear(_ sizes: (Int, Int, Int, Int)) {
        let (h, w, oh, ow) = sizes
        checkGradients(
            inputs: [.sinusoid([2, 2, h, w], frequency: 0.57, phase: 0.2)], epsilon: 0.25,
            absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { bilinearResize($0[0], height: oh, width: ow) },
            backward: { inputs, dy in
                var dx = Tensor.zeros(inputs[0].shape)
                bilinearResizeBackward(inputGradient: &dx, outputGradient: dy)
                return [dx]
            })
    }

    @Test func concatenation() {
        let inputs: [Tensor] = [.sinusoid([2, 2, 3, 5], frequency: 0.3), .sinusoid([2, 3, 3, 5], frequency: 0.5),
                                .sinusoid([2, 1, 3, 5], frequency: 0.7)]
        checkGradients(
            inputs: inputs, epsilon: 0.25, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { concatenateChannels($0) },
            backward: { inputs, dy in
                var gradients = inputs.map { Tensor.zeros($0.shape) }
                concatenateChannelsBackward(inputGradients: &gradients, outputGradient: dy)
                return gradients
            })
    }

    @Test func residualAdd() {
        checkGradients(
            inputs: [.sinusoid([2, 3, 4, 5], frequency: 0.3), .sinusoid([2, 3, 4, 5], frequency: 0.5)],
            epsilon: 0.25, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { add($0[0], $0[1]) },
            backward: { inputs, dy in
                var da = Tensor.zeros(inputs[0].shape), db = Tensor.zeros(inputs[1].shape)
                accumulate(&da, dy)
                accumulate(&db, dy)
                return [da, db]
            })
    }

    @Test func dropoutWithFixedSeed() {
        checkGradients(
            inputs: [.sinusoid([2, 3, 6, 7], frequency: 0.3)], epsilon: 0.25, absoluteTolerance: 1e-4, relativeTolerance: 1e-4,
            forward: { dropout($0[0], probability: 0.3, seed: 42) },
            backward: { inputs, dy in
                var dx = Tensor.zeros(inputs[0].shape)
                dropoutBackward(inputGradient: &dx, outputGradient: dy, probability: 0.3, seed: 42)
                return [dx]
            })
    }

    @Test func crossEntropyWithIgnoredPixels() {
        let shape: Shape = [2, 5, 3, 4]
        let labels: [UInt8] = (0..<24).map { i in
            let value = UInt8((i * 7 + 3) % 6)
            return value == 5 ? 255 : value
        }
        #expect(labels.contains(255) && labels.contains { $0 != 255 })
        // The "output" is the scalar loss as a [1] tensor; dy is its weight.
        checkGradients(
            inputs: [.sinusoid(shape, frequency: 0.83, phase: 0.4, amplitude: 3)], epsilon: 1e-2,
            absoluteTolerance: 2e-3, relativeTolerance: 2e-3,
            forward: { Tensor(shape: [1], scalars: [softmaxCrossEntropy(logits: $0[0], labels: labels).loss]) },
            backward: { inputs, dy in
                var dz = Tensor.zeros(inputs[0].shape)
                softmaxCrossEntropyBackward(logitsGradient: &dz, logits: inputs[0], labels: labels, weight: dy[flat: 0])
                return [dz]
            })
    }
}
