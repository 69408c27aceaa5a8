import Segmentation
import Testing

/// The single-process training step's memory savings must not change a bit
/// of what it computes: folding each gradient into the optimizer state as
/// the backward finishes it (`Optimizer.absorb`) against keeping every
/// gradient for `Optimizer.update`, and the bottleneck's recomputed ReLU
/// outputs against the forward's.
@Suite("Training step")
struct TrainingStepTests {
    static func batch(seed: UInt64) -> Batch {
        var generator = SplitMix64(seed: seed)
        let images = Tensor.uniform([2, 3, 32, 32], in: -1...1, using: &generator)
        let labels: [UInt8] = (0..<(2 * 32 * 32)).map { i in
            let (y, x) = ((i % 1024) / 32, i % 32)
            return i % 89 == 0 ? 255 : (x + y < 24 ? 0 : (x > y ? 1 : 2))
        }
        return Batch(images: images, labels: labels, names: ["a", "b"])
    }

    @Test(arguments: [OptimizerKind.sgd, .adam, .nag])
    func absorbingTheGradientsGivesTheBitsOfTheFullUpdate(_ kind: OptimizerKind) {
        let configuration = NetworkConfiguration(algorithm: .fcn, backbone: .resnet50, stem: .deep, classCount: 3)
        let (network, initial) = SegmentationNetwork.make(configuration, seed: 5)
        func train(absorbing: Bool) -> (ParameterStore, Optimizer, [Float]) {
            var parameters = initial
            var optimizer = Optimizer(kind, parameters: parameters, momentum: 0.9, weightDecay: 1e-3)
            let step = TrainingStep(network: network, parameters: parameters, loss: SegmentationLoss(),
                                    absorbsGradients: absorbing)
            #expect(step.absorbsGradients == absorbing)
            var losses: [Float] = []
            for iteration in 0..<2 {
                losses.append(step.run(Self.batch(seed: UInt64(20 + iteration)), seed: UInt64(7 + iteration),
                                       parameters: &parameters, optimizer: &optimizer, learningRate: 0.01).loss)
            }
            return (parameters, optimizer, losses)
        }
        let (absorbed, absorbedOptimizer, absorbedLosses) = train(absorbing: true)
        let (full, fullOptimizer, fullLosses) = train(absorbing: false)
        #expect(absorbedLosses == fullLosses)
        #expect(absorbedOptimizer.step == 2 && fullOptimizer.step == 2)
        var differing: [String] = []
        for id in full.ids where absorbed[id] != full[id] || absorbedOptimizer.firstState[id] != fullOptimizer.firstState[id]
            || (kind == .adam && absorbedOptimizer.secondState[id] != fullOptimizer.secondState[id]) {
            differing.append(full.name(of: id))
        }
        #expect(differing.isEmpty, "tensors that differ: \(differing.prefix(5))")
        // The update moved the weights, so equality is not that of two untouched stores.
        let moved = initial.ids.filter { initial.role(of: $0) == .trainable && initial[$0] != full[$0] }.count
        #expect(moved > initial.ids.count / 3)
    }

    @Test(arguments: [true, false])
    func recomputedBatchNormOutputHasTheForwardsBits(_ relu: Bool) {
        var generator = SplitMix64(seed: 3)
        let input = Tensor.uniform([3, 5, 7, 9], in: -2...3, using: &generator)
        let scale = Tensor.uniform([5], in: 0.2...1.5, using: &generator)
        let shift = Tensor.uniform([5], in: -0.5...0.5, using: &generator)
        let (output, statistics) = batchNormTraining(input, scale: scale, shift: shift, relu: relu)
        let again = batchNormTrainingOutput(input, scale: scale, shift: shift, statistics: statistics, relu: relu)
        #expect(again == output)
        // Not trivially equal: another shift gives other bits.
        let shifted = Tensor(shape: [5], scalars: shift.scalars.map { $0 + 0.25 })
        #expect(batchNormTrainingOutput(input, scale: scale, shift: shifted, statistics: statistics, relu: relu) != output)
    }
}
