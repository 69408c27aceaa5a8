import Foundation

/// `segment bench conv`: forward and backward timings of ResNet-50's
/// GEMM-bound convolutions at crop 240, batch 2, each beside a bare
/// `cblas_sgemm` of the same total M×N×K.
///
/// Reference: OpenBLAS on all cores (its own threads), one call of
/// M = K_out, N = batch·P·Q, K = C·R·S for the forward; for the backward the
/// two products a backward needs, dW (M = K_out, N = C·R·S, K = batch·P·Q, B
/// transposed) and dcols (M = C·R·S, N = batch·P·Q, K = K_out, A transposed).
/// Our kernels run with OpenBLAS single-threaded and our own workers
/// (Docs/threading.md), so the ratio is what the whole layer achieves against
/// the best a bare sgemm does on the same cores. The layers run as a training
/// step runs them: im2col + sgemm, unless `SEGMENTATION_FAST_CONV=training`
/// (`FastConvolutions`) turns on the Winograd path, whose ratio then counts
/// the direct form's multiply-adds it does not do.
public enum ConvolutionBenchmark {
    public struct Shape: Sendable {
        public var name: String
        public var geometry: ConvGeometry

        public init(name: String, geometry: ConvGeometry) {
            self.name = name
            self.geometry = geometry
        }

        /// A layer written as the table names them: `3x3 2048->256 d12 @60x60`
        /// (kernel, input -> output channels, optional dilation, input size;
        /// stride 1, padding that keeps the size), or nil if `text` is not one.
        public init?(parsing text: String, batch: Int) {
            let pattern = /\s*(\d+)x(\d+)\s+(\d+)->(\d+)(?:\s+d(\d+))?\s+@(\d+)x(\d+)\s*/
            guard let match = text.wholeMatch(of: pattern),
                  let kh = Int(match.1), let kw = Int(match.2), kh == kw, kh % 2 == 1, kh <= 15,
                  let c = Int(match.3), let k = Int(match.4), let h = Int(match.6), let w = Int(match.7),
                  (1...(1 << 16)).contains(c), (1...(1 << 16)).contains(k),
                  (1...(1 << 14)).contains(h), (1...(1 << 14)).contains(w),
                  // Tensors of at most 1 GiB each (the bounds above keep these products from overflowing).
                  c * h * w <= 1 << 28, k * h * w <= 1 << 28, c * k * kh * kh <= 1 << 28
            else { return nil }
            let dilation = match.5.flatMap { Int($0) } ?? 1
            guard dilation >= 1, dilation <= 1024 else { return nil }
            name = text.trimmingCharacters(in: .whitespaces)
            geometry = ConvGeometry(batch: batch, inputChannels: c, outputChannels: k, inputHeight: h, inputWidth: w,
                                    kernelSize: kh, stride: 1, padding: dilation * (kh / 2), dilation: dilation)
        }
    }

    public struct Row: Codable, Sendable, Equatable {
        public var name: String
        public var pass: String
        public var median_ms: Double
        public var gflops: Double
        public var sgemm_gflops: Double
        public var ratio: Double
        /// Process CPU time ÷ wall time over the timed runs: how many cores the
        /// layer kept busy. Shown in the table; not part of the JSON contract.
        public var coresBusy: Double = 0

        enum CodingKeys: String, CodingKey {
            case name, pass, median_ms, gflops, sgemm_gflops, ratio
        }
    }

    /// The shapes the foundation issue names: ResNet-50 at crop 240, batch 2 (feature map 60×60 after
    /// the stem, 30×30 at output stride 8).
    public static func resnet50Shapes(batch: Int = 2) -> [Shape] {
        func conv(_ name: String, _ c: Int, _ k: Int, _ size: Int, kernel: Int, dilation: Int = 1) -> Shape {
            Shape(name: name, geometry: ConvGeometry(
                batch: batch, inputChannels: c, outputChannels: k, inputHeight: size, inputWidth: size,
                kernelSize: kernel, stride: 1, padding: kernel == 3 ? dilation : 0, dilation: dilation))
        }
        return [
            conv("3x3 64->64 @60x60", 64, 64, 60, kernel: 3),
            conv("3x3 256->256 d2 @30x30", 256, 256, 30, kernel: 3, dilation: 2),
            conv("3x3 512->512 d4 @30x30", 512, 512, 30, kernel: 3, dilation: 4),
            conv("1x1 1024->2048 @30x30", 1024, 2048, 30, kernel: 1),
            conv("3x3 2048->512 @30x30 (FCN head)", 2048, 512, 30, kernel: 3),
        ]
    }

    /// Median wall time in milliseconds of `runs` calls, after at least
    /// `warmup` untimed calls and at least `minimumWarmup` of untimed work (the
    /// first calls of a process fault in workspace pages and wake the worker
    /// threads; a fixed count of warm-up calls is too short for the small layers).
    public static func medianMilliseconds(
        runs: Int, warmup: Int, minimumWarmup: Duration = .milliseconds(300), _ body: () -> Void
    ) -> Double {
        let clock = ContinuousClock()
        let warmupStart = clock.now
        var warmed = 0
        while warmed < warmup || clock.now - warmupStart < minimumWarmup {
            body()
            warmed += 1
        }
        var samples: [Double] = []
        let cpuStart = processCPUSeconds()
        let wallStart = clock.now
        for _ in 0..<runs {
            let elapsed = clock.measure { body() }
            samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        let wall = clock.now - wallStart
        lastCoresBusy = (processCPUSeconds() - cpuStart)
            / (Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18)
        samples.sort()
        return samples.count % 2 == 1
            ? samples[samples.count / 2]
            : (samples[samples.count / 2 - 1] + samples[samples.count / 2]) / 2
    }

    /// Cores busy during the last `medianMilliseconds` call's timed runs.
    nonisolated(unsafe) private static var lastCoresBusy = 0.0

    private static func processCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
    }

    /// Runs every shape; `progress` receives each row as it is measured.
    /// `.training` times the forward and the backward as a training step runs
    /// them; `.inference` only the forward, with the paths and the workspace
    /// a prediction uses.
    public static func run(
        shapes: [Shape] = resnet50Shapes(), runs: Int = 7, warmup: Int = 2, mode: Mode = .training,
        progress: (Row) -> Void = { _ in }
    ) -> [Row] {
        precondition(runs >= 1 && warmup >= 0)
        var rows: [Row] = []
        for shape in shapes {
            let g = shape.geometry
            var generator = SplitMix64(seed: 1)
            let x = Tensor.uniform(g.inputShape, in: -1...1, using: &generator)
            let w = Tensor.uniform(g.weightShape, in: -0.1...0.1, using: &generator)
            let bias = Tensor.uniform([g.outputChannels], in: -0.1...0.1, using: &generator)
            let dy = Tensor.uniform(g.outputShape, in: -1...1, using: &generator)
            let workspace = mode == .training ? Workspace.training() : Workspace()
            let fastPaths = FastConvolutions.isEnabled(for: mode)
            let M = g.outputChannels, N = g.batch * g.outputPlane, K = g.columnRows
            let flops = 2.0 * Double(M) * Double(N) * Double(K)

            // Forward: the layer as a network calls it (output allocated, bias added).
            let forward = medianMilliseconds(runs: runs, warmup: warmup) {
                _ = conv2d(x, weight: w, bias: bias, geometry: g, workspace: workspace, fastPaths: fastPaths)
            }
            let forwardCores = lastCoresBusy
            let sgemmForward = referenceMilliseconds(runs: runs, warmup: warmup, products: [(.none, .none, M, N, K)])
            rows.append(row(shape.name, "forward", forward, flops, sgemmForward, forwardCores))
            progress(rows.last!)
            guard mode == .training else { continue }

            // Backward: data and weight (and bias) gradients, accumulated into existing buffers.
            var dx: Tensor? = .zeros(g.inputShape), dw: Tensor? = .zeros(g.weightShape)
            var db: Tensor? = .zeros([g.outputChannels])
            let backward = medianMilliseconds(runs: runs, warmup: warmup) {
                conv2dBackward(inputGradient: &dx, weightGradient: &dw, biasGradient: &db,
                               outputGradient: dy, input: x, weight: w, geometry: g, workspace: workspace,
                               fastPaths: fastPaths)
            }
            let backwardCores = lastCoresBusy
            let sgemmBackward = referenceMilliseconds(
                runs: runs, warmup: warmup, products: [(.none, .transposed, M, K, N), (.transposed, .none, K, N, M)])
            rows.append(row(shape.name, "backward", backward, 2 * flops, sgemmBackward, backwardCores))
            progress(rows.last!)
        }
        return rows
    }

    private static func row(
        _ name: String, _ pass: String, _ ms: Double, _ flops: Double, _ sgemmMs: Double, _ cores: Double
    ) -> Row {
        let gflops = flops / (ms * 1e6)
        let sgemmGflops = flops / (sgemmMs * 1e6)
        return Row(name: name, pass: pass, median_ms: ms, gflops: gflops, sgemm_gflops: sgemmGflops, ratio: gflops / sgemmGflops, coresBusy: cores)
    }

    /// Median time of the bare products, run back to back, with OpenBLAS on all cores.
    private static func referenceMilliseconds(
        runs: Int, warmup: Int, products: [(BLAS.Transpose, BLAS.Transpose, Int, Int, Int)]
    ) -> Double {
        let buffers = products.map { (ta, tb, m, n, k) in
            (a: Tensor(shape: [m * k], repeating: 0.01), b: Tensor(shape: [k * n], repeating: 0.02),
             c: Tensor(shape: [m * n]), ta: ta, tb: tb, m: m, n: n, k: k)
        }
        var outputs = buffers.map(\.c)
        return BLAS.withOpenBLASThreads(Parallelism.workerCount) {
            medianMilliseconds(runs: runs, warmup: warmup) {
                for (index, p) in buffers.enumerated() {
                    p.a.withUnsafeBufferPointer { a in
                        p.b.withUnsafeBufferPointer { b in
                            outputs[index].withUnsafeMutableBufferPointer { c in
                                BLAS.referenceSgemm(p.ta, p.tb, m: p.m, n: p.n, k: p.k,
                                                    a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
    }
}
