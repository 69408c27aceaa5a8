import Foundation
@testable import Segmentation
import SegmentationTestSupport
import Testing

/// The first three steps of each optimizer on an 8-element tensor, against
/// (1) the SPEC §5 formulas evaluated by hand here in Double, and (2)
/// PyTorch's optimizers on a committed fixture (Fixtures/generate_optimizer_fixtures.py),
/// whose updates equal MXNet's except where ε sits (inside or outside a square
/// root), a difference of ~1e-7 with these gradients.
@Suite("Optimizers")
struct OptimizerTests {
    static let count = 8
    static func initial() -> [Double] { (0..<count).map { Double(Float(sin(0.37 * Double($0) + 0.1))) } }
    static func gradient(_ k: Int) -> [Double] {
        (0..<count).map { Double(Float(sin((0.5 + 0.1 * Double(k)) * Double($0) + 0.3 * Double(k)))) }
    }

    /// Our optimizer on one trainable tensor (learning-rate multiplier 1).
    static func ours(_ kind: OptimizerKind) -> [[Float]] {
        var parameters = ParameterStore()
        let id = parameters.append(name: "w", tensor: Tensor(shape: [count], scalars: initial().map(Float.init)), role: .trainable)
        var optimizer = Optimizer(kind, parameters: parameters, momentum: 0.9, weightDecay: 1e-4, gamma1: 0.9, gamma2: 0.9)
        var result: [[Float]] = []
        for k in 1...3 {
            var gradients = parameters.zerosLikeTrainable()
            gradients[id] = Tensor(shape: [count], scalars: gradient(k).map(Float.init))
            optimizer.update(&parameters, gradients: gradients, learningRate: 0.1)
            result.append(parameters[id].scalars)
        }
        return result
    }

    /// SPEC §5, written out again element by element in Double.
    static func byHand(_ kind: OptimizerKind) -> [[Double]] {
        let (eta, mu, wd, g1, g2) = (0.1, 0.9, 1e-4, 0.9, 0.9)
        var w = initial()
        var a = [Double](repeating: 0, count: count), b = a, c = a
        var result: [[Double]] = []
        for k in 1...3 {
            let g = gradient(k)
            for i in 0..<count {
                switch kind {
                case .sgd:
                    a[i] = mu * a[i] - eta * wd * w[i] - eta * g[i]; w[i] += a[i]
                case .nag:
                    let gHat = g[i] + wd * w[i]; a[i] = mu * a[i] + gHat; w[i] -= eta * (gHat + mu * a[i])
                case .adam:
                    a[i] = 0.9 * a[i] + 0.1 * g[i]; b[i] = 0.999 * b[i] + 0.001 * g[i] * g[i]
                    let etaT = eta * (1 - pow(0.999, Double(k))).squareRoot() / (1 - pow(0.9, Double(k)))
                    w[i] -= etaT * a[i] / (b[i].squareRoot() + 1e-8)
                case .adagrad:
                    a[i] += g[i] * g[i]; w[i] -= eta * g[i] / (a[i] + 1e-7).squareRoot()
                case .rmsprop:
                    a[i] = (1 - g1) * g[i] * g[i] + g1 * a[i]; b[i] = (1 - g1) * g[i] + g1 * b[i]
                    c[i] = g2 * c[i] - eta * g[i] / (a[i] - b[i] * b[i] + 1e-8).squareRoot(); w[i] += c[i]
                }
            }
            result.append(w)
        }
        return result
    }

    @Test(arguments: OptimizerKind.allCases)
    func matchesTheFormulasByHand(_ kind: OptimizerKind) {
        // Float32 arithmetic against Double: a few ulps of the weights (~1e-6).
        for (step, (ours, hand)) in zip(Self.ours(kind), Self.byHand(kind)).enumerated() {
            expectClose(Tensor(shape: [Self.count], scalars: ours), Tensor(shape: [Self.count], scalars: hand.map(Float.init)),
                        absoluteTolerance: 2e-6, relativeTolerance: 2e-6, "\(kind) step \(step + 1)")
        }
    }

    @Test(arguments: OptimizerKind.allCases)
    func matchesPyTorch(_ kind: OptimizerKind) throws {
        let fixture = try loadFixture("optimizers.safetensors")
        for (step, ours) in Self.ours(kind).enumerated() {
            let expected = try #require(fixture.tensors["\(kind.rawValue)/step\(step + 1)"])
            // ε placement (inside vs outside the square root) and Float32 order: ≤ 1e-5.
            expectClose(Tensor(shape: [Self.count], scalars: ours), expected, absoluteTolerance: 1e-5, relativeTolerance: 1e-5,
                        "\(kind) step \(step + 1)")
        }
    }

    @Test func onlyTrainableTensorsMoveAndMultipliersScale() {
        var builder = ParameterBuilder(seed: 1)
        let norm = BatchNorm2d(channels: 2, name: "bn", builder: &builder)
        let head = builder.withLearningRateMultiplier(10) { b in b.add("head.w", Tensor(shape: [1], repeating: 0)) }
        var parameters = builder.store
        var gradients = parameters.zerosLikeTrainable()
        gradients[norm.weight] = Tensor(shape: [2], repeating: 1)
        gradients[head] = Tensor(shape: [1], repeating: 1)
        var optimizer = Optimizer(.sgd, parameters: parameters, momentum: 0.9, weightDecay: 0)
        optimizer.update(&parameters, gradients: gradients, learningRate: 0.01)
        #expect(parameters[norm.weight].scalars == [0.99, 0.99])
        #expect(abs(parameters[head].scalars[0] + 0.1) < 1e-7)          // 10 × the base rate
        #expect(parameters[norm.runningVariance].scalars == [1, 1])      // buffers untouched
    }
}
