import Foundation

/// How much memory one inference needs, so that an image too large for the
/// machine is refused with a sentence instead of ending the process out of
/// memory.
///
/// The model is linear in the pixel count: the activations of a dilated
/// ResNet at output stride 8, its head and the full-size logits all scale
/// with H·W; the convolution scratch is bounded per layer. Measured with
/// `segment bench predict --size N --json` (ResNet-50; Docs/performance.md),
/// PSP, the costliest head, peaks at 736 MiB at 480² and 850 MiB at 720²
/// (the whole Winograd scratch), 620 MiB at 1024², 1057 MiB at 1536² and
/// 1644 MiB at 2048² (large images bound the scratch,
/// `Predictor.boundedScratchPixels`): about 345 MB per further megapixel.
/// The per-pixel figure below adds the 84 bytes per pixel of probabilities
/// (21 classes) that a probability answer computes beside the logits, and
/// rounds up; the fixed part covers the small images, whose scratch is not
/// bounded.
public enum InferenceMemory {
    /// Peak bytes per input pixel above the fixed part.
    public static let bytesPerPixel = 450
    /// Weights, code, kernel scratch and allocator slack, independent of the image.
    public static let fixedBytes = 750_000_000
    /// The share of physical memory an inference may plan to use.
    public static let usableShare = 0.75

    /// About how many bytes one inference of `pixels` pixels needs.
    public static func bytesNeeded(pixels: Int) -> Int {
        fixedBytes + pixels.multipliedReportingOverflow(by: bytesPerPixel).partialValue
    }

    /// This machine's physical memory.
    public static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// The largest image (in pixels) whose inference fits in `usableShare` of
    /// `memory` bytes when `evaluations` run at once (a server's workers),
    /// and never above the decoder's own limit.
    public static func maximumPixels(memory: Int = physicalMemory, evaluations: Int = 1) -> Int {
        let budget = Double(memory) * usableShare / Double(max(1, evaluations)) - Double(fixedBytes)
        let pixels = max(budget / Double(bytesPerPixel), 1)
        return min(Int(pixels), ImageCodec.defaultMaximumPixels)
    }

    /// "1.9 GB", "186 GB": for messages.
    static func gigabytes(_ bytes: Int) -> String {
        let value = Double(bytes) / 1e9
        return value < 10 ? String(format: "%.1f GB", value) : String(format: "%.0f GB", value)
    }
}

extension Predictor {
    /// Decodes the image at `url`, refusing one above `maximumPixels` from its
    /// header, before any pixel buffer is allocated.
    public func decodeImage(contentsOf url: URL) throws -> RGBImage {
        try decodeImage(ImageCodec.read(url), file: url.path)
    }

    /// Decodes `data` (`file` names it in errors), refusing an image above
    /// `maximumPixels` from its header.
    public func decodeImage(_ data: Data, file: String) throws -> RGBImage {
        do {
            return try ImageCodec.decodeImage(data, file: file, maximumPixels: maximumPixels)
        } catch let ImageError.tooLarge(_, width, height, limit) where width * height > limit {
            throw PredictionError.tooLargeForMemory(
                file: file, width: width, height: height, maximumPixels: limit,
                neededBytes: InferenceMemory.bytesNeeded(pixels: width * height), physicalMemory: InferenceMemory.physicalMemory)
        }
    }
}
