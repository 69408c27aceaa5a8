import RealModule

// Softmax cross-entropy over the class axis of NCHW logits, per pixel.
//
// N batch, C classes, H×W pixels; labels[N, H, W] are class ids, 255 = ignore.
//   loss = −(1/V) Σ_{valid pixels} log softmax(z)[label],  V = number of valid pixels
//   dz   = (softmax(z) − onehot(label)) / V  at valid pixels, 0 at ignored ones
// With no valid pixel the loss is 0 and so is the gradient (PyTorch would give NaN).
// Pixels are processed in blocks of 256 so the class loop runs over contiguous
// rows (one row per class) rather than striding across planes per pixel.

/// The ignore label (SPEC §2): never a class, excluded from loss and metrics.
public let ignoreLabel: UInt8 = 255

private let pixelBlock = 256

/// Returns (Σ −log p[label] over valid pixels, valid pixel count). With
/// `logitsGradient` non-nil, also adds `gradientScale · (softmax − onehot)` there.
func softmaxCrossEntropy(
    logitsGradient: UnsafeMutablePointer<Float>?, gradientScale: Float,
    logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>,
    batch: Int, classes C: Int, plane: Int
) -> (lossSum: Double, validCount: Int) {
    let blocksPerImage = (plane + pixelBlock - 1) / pixelBlock
    let jobs = batch * blocksPerImage
    let z = SendablePointer(UnsafeMutablePointer(mutating: logits))
    let y = SendablePointer(UnsafeMutablePointer(mutating: labels))
    let dz = logitsGradient.map { SendablePointer($0) }
    // One partial (loss, count) slot per job; summed in job order, so the result
    // does not depend on the thread split.
    var lossParts = [Double](repeating: 0, count: jobs)
    var countParts = [Int](repeating: 0, count: jobs)
    lossParts.withUnsafeMutableBufferPointer { lossBuffer in
        countParts.withUnsafeMutableBufferPointer { countBuffer in
            let losses = SendablePointer(lossBuffer.baseAddress!), counts = SendablePointer(countBuffer.baseAddress!)
            parallelFor(jobs, minimumChunk: max(1, 64 / max(1, C))) { range in
                var maximum = [Float](repeating: 0, count: pixelBlock)
                var total = [Float](repeating: 0, count: pixelBlock)
                for job in range {
                    let n = job / blocksPerImage
                    let start = (job % blocksPerImage) * pixelBlock
                    let width = min(pixelBlock, plane - start)
                    let image = z.base + n * C * plane + start
                    let label = y.base + n * plane + start
                    for i in 0..<width { maximum[i] = image[i] }
                    for c in 1..<max(C, 1) {
                        let row = image + c * plane
                        for i in 0..<width { maximum[i] = max(maximum[i], row[i]) }
                    }
                    for i in 0..<width { total[i] = 0 }
                    for c in 0..<C {
                        let row = image + c * plane
                        for i in 0..<width { total[i] += Float.exp(row[i] - maximum[i]) }
                    }
                    var loss = 0.0
                    var valid = 0
                    for i in 0..<width where label[i] != ignoreLabel {
                        let k = Int(label[i])
                        precondition(k < C, "label \(k) ≥ class count \(C)")
                        // −log softmax = log Σ exp(z − max) − (z_k − max)
                        loss += Double(Float.log(total[i]) - (image[k * plane + i] - maximum[i]))
                        valid += 1
                    }
                    losses.base[job] = loss
                    counts.base[job] = valid
                    guard let dz else { continue }
                    let gradient = dz.base + n * C * plane + start
                    for c in 0..<C {
                        let row = image + c * plane, out = gradient + c * plane
                        for i in 0..<width where label[i] != ignoreLabel {
                            let p = Float.exp(row[i] - maximum[i]) / total[i]
                            out[i] += gradientScale * (Int(label[i]) == c ? p - 1 : p)
                        }
                    }
                }
            }
        }
    }
    return (lossParts.reduce(0, +), countParts.reduce(0, +))
}

// MARK: - Tensor API

/// Mean softmax cross-entropy over non-ignored pixels; `labels` has N·H·W
/// entries in row-major [N, H, W] order. Returns the loss and the number of
/// valid pixels.
public func softmaxCrossEntropy(logits: Tensor, labels: [UInt8]) -> (loss: Float, validCount: Int) {
    let s = logits.shape
    precondition(s.rank == 4 && labels.count == s.batch * s.height * s.width,
                 "cross-entropy: logits \(s) with \(labels.count) labels")
    let (sum, count) = logits.withPointer { z in
        labels.withUnsafeBufferPointer { y in
            softmaxCrossEntropy(logitsGradient: nil, gradientScale: 0, logits: z, labels: y.baseAddress!,
                                batch: s.batch, classes: s.channels, plane: s.height * s.width)
        }
    }
    return (count > 0 ? Float(sum / Double(count)) : 0, count)
}

/// Adds `weight · ∂(mean cross-entropy)/∂logits` into `logitsGradient` and
/// returns the (unweighted) mean loss and the valid pixel count.
///
/// `normalizer`: the valid pixel count to average over, when the batch is
/// part of a larger one (data-parallel: the global batch's count, SPEC §10);
/// the returned loss is then this part's share of the global mean.
@discardableResult
public func softmaxCrossEntropyBackward(
    logitsGradient: inout Tensor, logits: Tensor, labels: [UInt8], weight: Float = 1, normalizer: Int? = nil
) -> (loss: Float, validCount: Int) {
    let s = logits.shape
    precondition(logitsGradient.shape == s && labels.count == s.batch * s.height * s.width)
    let valid = normalizer ?? labels.reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) }
    let scale = valid > 0 ? weight / Float(valid) : 0
    let (sum, count) = logitsGradient.withMutablePointer { dz in
        logits.withPointer { z in
            labels.withUnsafeBufferPointer { y in
                softmaxCrossEntropy(logitsGradient: dz, gradientScale: scale, logits: z, labels: y.baseAddress!,
                                    batch: s.batch, classes: s.channels, plane: s.height * s.width)
            }
        }
    }
    return (valid > 0 ? Float(sum / Double(valid)) : 0, count)
}
