// Bilinear resize with align_corners = true (MXNet BilinearResize2D, PyTorch
// F.interpolate(mode="bilinear", align_corners=True)), over NCHW planes.
//
// H×W input plane, P×Q output plane. Output row p samples input row
//   src = p·(H − 1)/(P − 1)     (src = 0 when P = 1)
// between rows ⌊src⌋ and min(⌊src⌋ + 1, H − 1) with weight src − ⌊src⌋;
// likewise for columns. Corners map to corners exactly.

/// Source index pairs and weights for one axis.
struct LinearTaps {
    var lower: [Int]
    var upper: [Int]
    var upperWeight: [Float]

    init(input: Int, output: Int) {
        let scale: Float = output > 1 ? Float(input - 1) / Float(output - 1) : 0
        lower = []; upper = []; upperWeight = []
        lower.reserveCapacity(output); upper.reserveCapacity(output); upperWeight.reserveCapacity(output)
        for o in 0..<output {
            let source = Float(o) * scale
            let l = min(Int(source), input - 1)
            lower.append(l)
            upper.append(min(l + 1, input - 1))
            upperWeight.append(source - Float(l))
        }
    }
}

func bilinearResizeForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, outputHeight P: Int, outputWidth Q: Int
) {
    let rows = LinearTaps(input: H, output: P), cols = LinearTaps(input: W, output: Q)
    let y = SendablePointer(output), x = SendablePointer(UnsafeMutablePointer(mutating: input))
    // Balanced: a prediction's last resize has few planes (one per class), so halves are uneven.
    parallelForBalanced(planes, grain: max(1, 16384 / max(1, P * Q))) { range in
        for plane in range {
            let xp = x.base + plane * H * W, yp = y.base + plane * P * Q
            for p in 0..<P {
                let r0 = xp + rows.lower[p] * W, r1 = xp + rows.upper[p] * W
                let wy = rows.upperWeight[p]
                let out = yp + p * Q
                for q in 0..<Q {
                    let c0 = cols.lower[q], c1 = cols.upper[q], wx = cols.upperWeight[q]
                    let top = r0[c0] + (r0[c1] - r0[c0]) * wx
                    let bottom = r1[c0] + (r1[c1] - r1[c0]) * wx
                    out[q] = top + (bottom - top) * wy
                }
            }
        }
    }
}

/// The adjoint: each dy[p, q] is split over its four source cells with the forward's weights.
func bilinearResizeBackward(
    inputGradient: UnsafeMutablePointer<Float>, outputGradient: UnsafePointer<Float>,
    planes: Int, height H: Int, width W: Int, outputHeight P: Int, outputWidth Q: Int
) {
    let rows = LinearTaps(input: H, output: P), cols = LinearTaps(input: W, output: Q)
    let dx = SendablePointer(inputGradient), dy = SendablePointer(UnsafeMutablePointer(mutating: outputGradient))
    parallelFor(planes, minimumChunk: max(1, 16384 / max(1, P * Q))) { range in
        for plane in range {
            let d = dx.base + plane * H * W, g = dy.base + plane * P * Q
            for p in 0..<P {
                let r0 = d + rows.lower[p] * W, r1 = d + rows.upper[p] * W
                let wy = rows.upperWeight[p]
                for q in 0..<Q {
                    let c0 = cols.lower[q], c1 = cols.upper[q], wx = cols.upperWeight[q]
                    let v = g[p * Q + q]
                    let top = v * (1 - wy), bottom = v * wy
                    r0[c0] += top * (1 - wx)
                    r0[c1] += top * wx
                    r1[c0] += bottom * (1 - wx)
                    r1[c1] += bottom * wx
                }
            }
        }
    }
}

// MARK: - Tensor API

/// Resizes the H×W planes of an NCHW tensor to `height`×`width`, align_corners = true.
public func bilinearResize(_ input: Tensor, height: Int, width: Int) -> Tensor {
    let s = input.shape
    precondition(s.rank == 4 && height > 0 && width > 0 && s.height > 0 && s.width > 0,
                 "bilinear resize of \(s) to \(height)×\(width)")
    return Tensor(shape: [s.batch, s.channels, height, width]) { y in
        input.withPointer { x in
            bilinearResizeForward(output: y.baseAddress!, input: x, planes: s.batch * s.channels,
                                  height: s.height, width: s.width, outputHeight: height, outputWidth: width)
        }
    }
}

public func bilinearResizeBackward(inputGradient: inout Tensor, outputGradient: Tensor) {
    let s = inputGradient.shape, o = outputGradient.shape
    precondition(s.batch == o.batch && s.channels == o.channels)
    inputGradient.withMutablePointer { dx in outputGradient.withPointer { dy in
        bilinearResizeBackward(inputGradient: dx, outputGradient: dy, planes: s.batch * s.channels,
                               height: s.height, width: s.width, outputHeight: o.height, outputWidth: o.width)
    } }
}
