/// The class with the largest logit per pixel: [N, C, H, W] → N·H·W class ids
/// (row-major [N, H, W]); ties go to the lower class id.
public func argmaxClasses(_ logits: Tensor) -> [UInt8] {
    let s = logits.shape
    precondition(s.rank == 4 && s.channels <= 256, "argmax expects [N, C ≤ 256, H, W] logits, got \(s)")
    let plane = s.height * s.width
    var result = [UInt8](repeating: 0, count: s.batch * plane)
    logits.withPointer { z in
        result.withUnsafeMutableBufferPointer { out in
            for n in 0..<s.batch {
                let image = z + n * s.channels * plane
                var best = [Float](UnsafeBufferPointer(start: image, count: plane))
                for c in 1..<max(s.channels, 1) {
                    let row = image + c * plane
                    for i in 0..<plane where row[i] > best[i] {
                        best[i] = row[i]
                        out[n * plane + i] = UInt8(c)
                    }
                }
            }
        }
    }
    return result
}
