/// The class with the largest logit per pixel: [N, C, H, W] → N·H·W class ids
/// (row-major [N, H, W]); ties go to the lower class id.
public func argmaxClasses(_ logits: Tensor) -> [UInt8] {
    let s = logits.shape
    precondition(s.rank == 4 && s.channels <= 256, "argmax expects [N, C ≤ 256, H, W] logits, got \(s)")
    let plane = s.height * s.width
    var result = [UInt8](repeating: 0, count: s.batch * plane)
    let piece = 16384
    let piecesPerImage = (plane + piece - 1) / piece
    logits.withPointer { z in
        result.withUnsafeMutableBufferPointer { out in
            let z = SendablePointer(UnsafeMutablePointer(mutating: z)), out = SendablePointer(out.baseAddress!)
            // Pixels are independent: pieces of each image's plane, a running best per piece.
            parallelForBalanced(s.batch * piecesPerImage, grain: 1) { pieces in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: piece) { best in
                    for item in pieces {
                        let (n, p) = item.quotientAndRemainder(dividingBy: piecesPerImage)
                        let pixels = (p * piece)..<min(plane, (p + 1) * piece)
                        let image = z.base + n * s.channels * plane + pixels.lowerBound
                        let labels = out.base + n * plane + pixels.lowerBound
                        for i in 0..<pixels.count { best[i] = image[i] }
                        for c in 1..<max(s.channels, 1) {
                            let row = image + c * plane
                            for i in 0..<pixels.count where row[i] > best[i] {
                                best[i] = row[i]
                                labels[i] = UInt8(c)
                            }
                        }
                    }
                }
            }
        }
    }
    return result
}
