@testable import Segmentation
import SegmentationTestSupport
import Synchronization
import Testing

/// Properties the reference comparisons do not cover.
@Suite("Kernel properties")
struct KernelPropertyTests {
    @Test func dropoutMaskIsSeededScaledAndNearTheRate() {
        let x = Tensor(shape: [4, 8, 32, 32], repeating: 1)
        let a = dropout(x, probability: 0.1, seed: 5)
        #expect(a == dropout(x, probability: 0.1, seed: 5), "same seed, different mask")
        #expect(a != dropout(x, probability: 0.1, seed: 6), "different seed, same mask")
        let values = Set(a.scalars)
        #expect(values == [0, 1 / 0.9], "values \(values.sorted())")
        let dropped = Double(a.scalars.filter { $0 == 0 }.count) / Double(x.elementCount)
        // 32768 Bernoulli(0.1) draws: sd 0.0017, so ±0.01 is ~6 sd.
        #expect(abs(dropped - 0.1) < 0.01, "dropped fraction \(dropped)")
    }

    @Test func dropoutMaskDoesNotDependOnThreadSplit() {
        // Counter-based: element i's draw is a function of (seed, i) only.
        let big = dropout(Tensor(shape: [1, 1, 1, 100_000], repeating: 1), probability: 0.5, seed: 3).scalars
        let small = dropout(Tensor(shape: [1, 1, 1, 1000], repeating: 1), probability: 0.5, seed: 3).scalars
        #expect(Array(big.prefix(1000)) == small)
    }

    @Test func crossEntropyWithEveryPixelIgnoredIsZero() {
        let z = Tensor.sinusoid([1, 3, 2, 2], frequency: 0.5)
        let labels = [UInt8](repeating: 255, count: 4)
        let (loss, valid) = softmaxCrossEntropy(logits: z, labels: labels)
        #expect(loss == 0 && valid == 0)
        var dz = Tensor.zeros(z.shape)
        softmaxCrossEntropyBackward(logitsGradient: &dz, logits: z, labels: labels)
        #expect(dz.scalars.allSatisfy { $0 == 0 })
    }

    @Test func crossEntropyOfUniformLogitsIsLogC() {
        let (loss, _) = softmaxCrossEntropy(logits: .zeros([2, 21, 3, 3]), labels: [UInt8](repeating: 4, count: 18))
        #expect(abs(loss - Float.log(21)) < 1e-6)
    }

    @Test func crossEntropyIsStableForHugeLogits() {
        let z = Tensor(shape: [1, 2, 1, 2], scalars: [1000, -1000, 0, 0])
        // pixel 0: logits (1000, 0), label 1; pixel 1: (−1000, 0), label 0: each costs 1000
        let (loss, _) = softmaxCrossEntropy(logits: z, labels: [1, 0])
        #expect(loss.isFinite && abs(loss - 1000) < 1e-3)
    }

    @Test func bilinearCornersAndIdentity() {
        let x = Tensor.sinusoid([1, 2, 5, 7], frequency: 0.3)
        #expect(bilinearResize(x, height: 5, width: 7) == x)
        let up = bilinearResize(x, height: 11, width: 13)
        // align_corners = true: the four corners are copied exactly
        for c in 0..<2 {
            #expect(up[flat: c * 143] == x[flat: c * 35])
            #expect(up[flat: c * 143 + 12] == x[flat: c * 35 + 6])
            #expect(up[flat: c * 143 + 130] == x[flat: c * 35 + 28])
            #expect(up[flat: c * 143 + 142] == x[flat: c * 35 + 34])
        }
    }

    @Test func adaptiveBinsFollowTheSpec() {
        // bin i spans ⌊i·n/b⌋ ..< ⌈(i+1)·n/b⌉
        #expect((0..<6).map { adaptiveBin($0, bins: 6, size: 30) } == [0..<5, 5..<10, 10..<15, 15..<20, 20..<25, 25..<30])
        #expect((0..<3).map { adaptiveBin($0, bins: 3, size: 7) } == [0..<3, 2..<5, 4..<7])
        #expect((0..<6).map { adaptiveBin($0, bins: 6, size: 4) } == [0..<1, 0..<2, 1..<2, 2..<3, 2..<4, 3..<4])
        #expect(adaptiveBin(0, bins: 1, size: 9) == 0..<9)
    }

    @Test func batchNormRunningUpdateUsesMomentumPointOne() {
        var mean = Tensor(shape: [2], scalars: [0, 1]), variance = Tensor(shape: [2], scalars: [1, 1])
        let batch = BatchNormStatistics(mean: Tensor(shape: [2], scalars: [1, 3]), variance: Tensor(shape: [2], scalars: [2, 0]))
        updateRunningStatistics(runningMean: &mean, runningVariance: &variance, batch: batch)
        #expect(mean.scalars == [0.1, 1.2])
        expectClose(variance, Tensor(shape: [2], scalars: [1.1, 0.9]), absoluteTolerance: 1e-7)
    }

    @Test func maxPoolPaddingNeverWins() {
        // All-negative input: a padded −∞ must not be chosen over a real value.
        // 3×3/2/1 on 3×3: each output's window is a 2×2 corner block of the input.
        let x = Tensor(shape: [1, 1, 3, 3], scalars: [-5, -4, -3, -2, -9, -6, -7, -8, -1])
        let (y, _) = maxPool(x)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.scalars == [-2, -3, -2, -1])
    }

    /// Inference's max pool without the argmax gives the values of the
    /// training form, bit for bit: on ties (values drawn from a few levels),
    /// −∞, NaN (kept), all-negative windows beside the padding, and several
    /// window geometries on odd sizes.
    @Test(arguments: [PoolGeometry.resnetStem, PoolGeometry(kernelSize: 2, stride: 2, padding: 0),
                      PoolGeometry(kernelSize: 3, stride: 1, padding: 1), PoolGeometry(kernelSize: 5, stride: 3, padding: 2)])
    func maxPoolValuesAreTheTrainingFormsValues(_ geometry: PoolGeometry) {
        var generator = SplitMix64(seed: 53)
        let shape: Shape = [2, 3, 13, 10]
        var scalars = Tensor.uniform(shape, in: 0...1, using: &generator).scalars.map { (($0 * 7).rounded(.down) - 5) }
        scalars[17] = -.infinity
        scalars[40] = .nan
        scalars[300] = .nan
        for i in 400..<440 { scalars[i] = -3 - Float(i % 5) }
        let x = Tensor(shape: shape, scalars: scalars)
        let expected = maxPool(x, geometry: geometry).output.scalars
        let actual = maxPoolValues(x, geometry: geometry).scalars
        #expect(actual.count == expected.count)
        #expect(expected.contains { $0.isNaN } && expected.contains { $0 == 1 }, "the cases are not vacuous")
        for (a, e) in zip(actual, expected) {
            #expect(a.bitPattern == e.bitPattern || (a.isNaN && e.isNaN), "\(a) against \(e)")
        }
    }

    @Test func parallelForCoversEveryIndexOnceAndDoesNotNest() {
        let count = 10_007
        var hits = [Int](repeating: 0, count: count)
        var nested = [Bool](repeating: false, count: Parallelism.workerCount)
        hits.withUnsafeMutableBufferPointer { buffer in
            let base = SendablePointer(buffer.baseAddress!)
            nested.withUnsafeMutableBufferPointer { flags in
                let flagBase = SendablePointer(flags.baseAddress!)
                parallelChunks(count) { chunk, range in
                    for i in range { base.base[i] += 1 }
                    // an inner loop inside a worker runs serially, as one chunk
                    var innerChunks = 0
                    parallelChunks(100) { _, _ in innerChunks += 1 }
                    flagBase.base[chunk] = innerChunks == 1
                }
            }
        }
        #expect(hits.allSatisfy { $0 == 1 })
        if Parallelism.workerCount > 1 { #expect(nested.allSatisfy { $0 }) }
    }

    /// The balanced loop hands out every range of `grain` once (the last
    /// shorter), each to a worker slot below the worker count, and nests
    /// serially like `parallelChunks`.
    @Test(arguments: [(10_007, 37), (5, 1), (8, 8), (3, 100), (0, 4)])
    func balancedLoopCoversEveryIndexOnceInRangesOfItsGrain(count: Int, grain: Int) {
        var hits = [Int](repeating: 0, count: max(count, 1))
        let workers = Parallelism.workerCount
        let log = Mutex<[(worker: Int, range: Range<Int>, nestedRanges: Int)]>([])
        hits.withUnsafeMutableBufferPointer { buffer in
            let base = SendablePointer(buffer.baseAddress!)
            parallelChunksBalanced(count, grain: grain) { worker, range in
                for i in range { base.base[i] += 1 }
                var nestedRanges = 0
                parallelChunksBalanced(100, grain: 1) { _, _ in nestedRanges += 1 }
                log.withLock { $0.append((worker, range, nestedRanges)) }
            }
        }
        #expect(hits[..<count].allSatisfy { $0 == 1 })
        let ranges = log.withLock { $0 }
        #expect(ranges.allSatisfy { $0.worker >= 0 && $0.worker < workers })
        if count > grain, workers > 1 {
            #expect(ranges.count == (count + grain - 1) / grain)
            #expect(ranges.allSatisfy { $0.range.lowerBound % grain == 0 && ($0.range.count == grain || $0.range.upperBound == count) })
            #expect(ranges.allSatisfy { $0.nestedRanges == 1 }, "a loop inside a worker runs serially, as one range")
        } else {
            #expect(ranges.count == (count > 0 ? 1 : 0), "one piece or none runs serially, in one call")
        }
    }
}

/// BN with ReLU fused (one pass each way) against BN followed by ReLU.
@Suite("Fused batch norm + ReLU")
struct FusedBatchNormReLUTests {
    @Test(arguments: [(2, 3, 5, 7), (1, 4, 3, 3), (3, 2, 9, 1)])
    func fusedMatchesUnfused(_ shape: (Int, Int, Int, Int)) {
        let (n, c, h, w) = shape
        var builder = ParameterBuilder(seed: 1)
        let norm = BatchNorm2d(channels: c, name: "bn", builder: &builder)
        var parameters = builder.store
        parameters[norm.weight] = .sinusoid([c], frequency: 1.1, phase: 0.5, amplitude: 1.5)
        parameters[norm.bias] = .sinusoid([c], frequency: 0.9, phase: 0.1, amplitude: 0.5)
        let x = Tensor.sinusoid([n, c, h, w], frequency: 0.29, phase: 0.4, amplitude: 2)
        let dy = Tensor.sinusoid([n, c, h, w], frequency: 0.71, phase: 0.3)
        for mode in [Mode.training, .inference] {
            let context = ForwardContext(mode: mode)
            let (fused, fusedCache) = norm.forward(x, parameters: parameters, context: context, relu: true)
            let (plain, plainCache) = norm.forward(x, parameters: parameters, context: context)
            #expect(fused == relu(plain), "\(mode) forward")
            guard mode == .training else { continue }
            var fusedGradients = parameters.zerosLikeTrainable(), plainGradients = parameters.zerosLikeTrainable()
            let dxFused = norm.backward(dy, cache: fusedCache!, parameters: parameters, gradients: &fusedGradients)
            let dyMasked = ReLU().backward(dy, output: relu(plain))
            let dxPlain = norm.backward(dyMasked, cache: plainCache!, parameters: parameters, gradients: &plainGradients)
            expectClose(dxFused, dxPlain, absoluteTolerance: 1e-5 * max(maximumMagnitude(dxPlain), 1))
            expectClose(fusedGradients[norm.weight], plainGradients[norm.weight], absoluteTolerance: 1e-5 * Float(n * h * w))
            expectClose(fusedGradients[norm.bias], plainGradients[norm.bias], absoluteTolerance: 1e-5 * Float(n * h * w))
        }
    }
}
