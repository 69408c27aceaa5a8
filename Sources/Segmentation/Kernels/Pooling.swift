// Max pooling and adaptive average pooling over NCHW, one (n, c) plane at a time.
//
// H×W input plane, P×Q output plane.
// Max pool: window R×S at (p·stride − pad, q·stride − pad); padding never wins
// (it counts as −∞, as in PyTorch and MXNet). The first maximum in row-major
// window order is the argmax; backward routes dy to it.
// Adaptive average pool to P×Q bins: bin p spans rows ⌊p·H/P⌋ ..< ⌈(p+1)·H/P⌉
// (SPEC §4; PyTorch's adaptive_avg_pool2d, MXNet's contrib AdaptiveAvgPooling2D).

/// Pooling window geometry (square window, equal stride and padding on both axes).
public struct PoolGeometry: Hashable, Sendable {
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int

    /// ResNet's stem pool: 3×3, stride 2, padding 1.
    public static let resnetStem = PoolGeometry(kernelSize: 3, stride: 2, padding: 1)

    public init(kernelSize: Int, stride: Int, padding: Int) {
        precondition(kernelSize > 0 && stride > 0 && padding >= 0 && padding * 2 <= kernelSize,
                     "pool: kernel \(kernelSize), stride \(stride), padding \(padding)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    public func outputSize(_ input: Int) -> Int {
        (input + 2 * padding - kernelSize) / stride + 1
    }
}

/// Writes `output[planes, P, Q]` and `argmax[planes, P, Q]` (flat index into the input plane).
func maxPoolForward(
    output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, input: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, geometry g: PoolGeometry
) {
    let (P, Q) = (g.outputSize(H), g.outputSize(W))
    let y = SendablePointer(output), indices = SendablePointer(argmax)
    let x = SendablePointer(UnsafeMutablePointer(mutating: input))
    parallelForBalanced(planes, grain: max(1, 16384 / max(1, H * W))) { range in
        for plane in range {
            let xp = x.base + plane * H * W, yp = y.base + plane * P * Q, ip = indices.base + plane * P * Q
            for p in 0..<P {
                let h0 = max(p * g.stride - g.padding, 0), h1 = min(p * g.stride - g.padding + g.kernelSize, H)
                for q in 0..<Q {
                    let w0 = max(q * g.stride - g.padding, 0), w1 = min(q * g.stride - g.padding + g.kernelSize, W)
                    var best = -Float.infinity, bestIndex = h0 * W + w0
                    for h in h0..<h1 {
                        for w in w0..<w1 where xp[h * W + w] > best || xp[h * W + w].isNaN {
                            best = xp[h * W + w]
                            bestIndex = h * W + w
                            if best.isNaN { break }
                        }
                    }
                    yp[p * Q + q] = best
                    ip[p * Q + q] = Int32(bestIndex)
                }
            }
        }
    }
}

/// Writes `output[planes, P, Q]`: the values of `maxPoolForward` without
/// the argmax, for inference. A window's maximum is taken over its rows
/// first (vector passes over whole input rows), then over its columns (the
/// same for the window starting at each column, shifted rows against each
/// other); a NaN wins as it does there. The result is the same value (the
/// order only decides between +0 and −0, which a ReLU before the pool
/// never leaves, and which NaN of several is kept).
func maxPoolValuesForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, geometry g: PoolGeometry
) {
    let (P, Q, k) = (g.outputSize(H), g.outputSize(W), g.kernelSize)
    let y = SendablePointer(output)
    let x = SendablePointer(UnsafeMutablePointer(mutating: input))
    /// `best[i] = later[i]` where `later[i]` is larger or NaN, for `count` values.
    func keepLarger(_ best: UnsafeMutablePointer<Float>, _ later: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let v = load8(later, i), b = load8(best, i)
            store8(b.replacing(with: v, where: (v .> b) .| (v .!= v)), best, i)
            i += 8
        }
        while i < count {
            if later[i] > best[i] || later[i].isNaN { best[i] = later[i] }
            i += 1
        }
    }
    parallelForBalanced(planes, grain: max(1, 16384 / max(1, H * W))) { range in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * W) { buffer in
            // rows: the maximum over the window's rows, per input column;
            // windows: over the k columns starting at each column.
            let rows = buffer.baseAddress!, windows = rows + W
            for plane in range {
                let xp = x.base + plane * H * W, yp = y.base + plane * P * Q
                for p in 0..<P {
                    let h0 = max(p * g.stride - g.padding, 0), h1 = min(p * g.stride - g.padding + k, H)
                    rows.update(from: xp + h0 * W, count: W)
                    for h in (h0 + 1)..<max(h0 + 1, h1) { keepLarger(rows, xp + h * W, count: W) }
                    let starts = max(0, W - k + 1)
                    windows.update(from: rows, count: starts)
                    for j in 1..<k { keepLarger(windows, rows + j, count: starts) }
                    for q in 0..<Q {
                        let first = q * g.stride - g.padding
                        if first >= 0 && first < starts {
                            yp[p * Q + q] = windows[first]
                            continue
                        }
                        // A window cut by the padding.
                        let w0 = max(first, 0), w1 = min(first + k, W)
                        var best = rows[w0]
                        for w in (w0 + 1)..<max(w0 + 1, w1) where rows[w] > best || rows[w].isNaN { best = rows[w] }
                        yp[p * Q + q] = best
                    }
                }
            }
        }
    }
}

/// dx[argmax] += dy, per plane.
func maxPoolBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    planes: Int, inputPlane: Int, outputPlane: Int
) {
    let dx = SendablePointer(inputGradient)
    let dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    let indices = SendablePointer(UnsafeMutablePointer(mutating: argmax))
    parallelFor(planes, minimumChunk: max(1, 16384 / max(1, inputPlane))) { range in
        for plane in range {
            let d = dx.base + plane * inputPlane
            for i in 0..<outputPlane {
                d[Int(indices.base[plane * outputPlane + i])] += dy.base[plane * outputPlane + i]
            }
        }
    }
}

/// Bin `index` of `bins` over `size` cells: ⌊index·size/bins⌋ ..< ⌈(index+1)·size/bins⌉.
@inline(__always)
func adaptiveBin(_ index: Int, bins: Int, size: Int) -> Range<Int> {
    let start = index * size / bins
    let end = ((index + 1) * size + bins - 1) / bins
    return start..<end
}

func adaptiveAveragePoolForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, outputHeight P: Int, outputWidth Q: Int
) {
    let y = SendablePointer(output), x = SendablePointer(UnsafeMutablePointer(mutating: input))
    parallelFor(planes, minimumChunk: max(1, 16384 / max(1, H * W))) { range in
        for plane in range {
            let xp = x.base + plane * H * W, yp = y.base + plane * P * Q
            for p in 0..<P {
                let rows = adaptiveBin(p, bins: P, size: H)
                for q in 0..<Q {
                    let cols = adaptiveBin(q, bins: Q, size: W)
                    var total: Float = 0
                    for h in rows { total += relaxedSum(xp + h * W + cols.lowerBound, count: cols.count) }
                    yp[p * Q + q] = total / Float(rows.count * cols.count)
                }
            }
        }
    }
}

/// Each input cell of a bin receives dy/area of every bin that covers it (bins may overlap).
func adaptiveAveragePoolBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, outputHeight P: Int, outputWidth Q: Int
) {
    let dx = SendablePointer(inputGradient), dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    parallelFor(planes, minimumChunk: max(1, 16384 / max(1, H * W))) { range in
        for plane in range {
            let d = dx.base + plane * H * W, g = dy.base + plane * P * Q
            for p in 0..<P {
                let rows = adaptiveBin(p, bins: P, size: H)
                for q in 0..<Q {
                    let cols = adaptiveBin(q, bins: Q, size: W)
                    let share = g[p * Q + q] / Float(rows.count * cols.count)
                    for h in rows {
                        let row = d + h * W
                        for w in cols { row[w] += share }
                    }
                }
            }
        }
    }
}

// MARK: - Tensor API

/// The argmax of a max-pool forward, needed by its backward.
public struct MaxPoolIndices: Sendable {
    public let inputShape: Shape
    public let indices: [Int32]
}

public func maxPool(_ input: Tensor, geometry: PoolGeometry = .resnetStem) -> (output: Tensor, indices: MaxPoolIndices) {
    let s = input.shape
    precondition(s.rank == 4, "max pool expects NCHW, got \(s)")
    let (P, Q) = (geometry.outputSize(s.height), geometry.outputSize(s.width))
    precondition(P > 0 && Q > 0, "max pool output is empty for \(s)")
    var indices = [Int32](repeating: 0, count: s.batch * s.channels * P * Q)
    let output = Tensor(shape: [s.batch, s.channels, P, Q]) { y in
        indices.withUnsafeMutableBufferPointer { ip in
            input.withPointer { x in
                maxPoolForward(output: y.baseAddress!, argmax: ip.baseAddress!, input: x,
                               planes: s.batch * s.channels, height: s.height, width: s.width, geometry: geometry)
            }
        }
    }
    return (output, MaxPoolIndices(inputShape: s, indices: indices))
}

/// Max pooling's values alone (inference: no argmax for a backward).
public func maxPoolValues(_ input: Tensor, geometry: PoolGeometry = .resnetStem) -> Tensor {
    let s = input.shape
    precondition(s.rank == 4, "max pool expects NCHW, got \(s)")
    let (P, Q) = (geometry.outputSize(s.height), geometry.outputSize(s.width))
    precondition(P > 0 && Q > 0, "max pool output is empty for \(s)")
    return Tensor(shape: [s.batch, s.channels, P, Q]) { y in
        input.withPointer { x in
            maxPoolValuesForward(output: y.baseAddress!, input: x, planes: s.batch * s.channels,
                                 height: s.height, width: s.width, geometry: geometry)
        }
    }
}

public func maxPoolBackward(inputGradient: inout Tensor, outputGradient: Tensor, indices: MaxPoolIndices) {
    let s = indices.inputShape, o = outputGradient.shape
    precondition(inputGradient.shape == s && o.batch * o.channels * o.height * o.width == indices.indices.count)
    inputGradient.withMutablePointer { dx in outputGradient.withPointer { dy in indices.indices.withUnsafeBufferPointer { ip in
        maxPoolBackward(inputGradient: dx, outputGradient: dy, argmax: ip.baseAddress!,
                        planes: s.batch * s.channels, inputPlane: s.height * s.width, outputPlane: o.height * o.width)
    } } }
}

/// Average pooling to `bins`×`bins` cells (1 = global average pooling).
public func adaptiveAveragePool(_ input: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
    let s = input.shape
    precondition(s.rank == 4 && outputHeight > 0 && outputWidth > 0 && s.height > 0 && s.width > 0)
    return Tensor(shape: [s.batch, s.channels, outputHeight, outputWidth]) { y in
        input.withPointer { x in
            adaptiveAveragePoolForward(output: y.baseAddress!, input: x, planes: s.batch * s.channels,
                                       height: s.height, width: s.width, outputHeight: outputHeight, outputWidth: outputWidth)
        }
    }
}

public func adaptiveAveragePoolBackward(inputGradient: inout Tensor, outputGradient: Tensor) {
    let s = inputGradient.shape, o = outputGradient.shape
    precondition(s.batch == o.batch && s.channels == o.channels)
    inputGradient.withMutablePointer { dx in outputGradient.withPointer { dy in
        adaptiveAveragePoolBackward(inputGradient: dx, outputGradient: dy, planes: s.batch * s.channels,
                                    height: s.height, width: s.width, outputHeight: o.height, outputWidth: o.width)
    } }
}
