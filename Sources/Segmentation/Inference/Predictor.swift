import Foundation
import Synchronization

/// The network's answer for one image, at the image's own size.
public struct Prediction: Sendable {
    /// [1, C, H, W] class scores (before softmax).
    public let logits: Tensor

    public var width: Int { logits.shape.width }
    public var height: Int { logits.shape.height }
    public var classCount: Int { logits.shape.channels }

    /// The class with the largest score per pixel (ties go to the lower id).
    public var mask: ClassMask {
        ClassMask(width: width, height: height, values: argmaxClasses(logits))
    }

    /// [1, C, H, W] softmax probabilities over the classes, per pixel.
    public var probabilities: Tensor { softmaxOverClasses(logits) }
}

/// Runs a trained model on images, in inference mode only: BN uses running
/// statistics, dropout is off, the aux head is skipped and no activation is
/// kept for a backward.
///
/// A `Predictor` is `Sendable`: several tasks or threads may call it at once.
/// Each call borrows a scratch workspace from a pool and gives it back, so
/// the im2col buffers are reused across calls instead of allocated anew; the
/// pool holds one workspace per call that ran concurrently.
public final class Predictor: Sendable {
    public let model: SegmentationModel
    /// Images above this many pixels are refused before decoding; by default
    /// the largest whose inference fits in this machine's memory.
    public let maximumPixels: Int
    /// Evaluations of at least this many pixels (all images of the batch)
    /// keep the Winograd path's scratch within the workspace's budget
    /// (`Workspace.boundWinogradScratch(_:)`); smaller ones leave it whole,
    /// which is faster there. Measured (`segment bench predict`, interleaved):
    /// at 480² bounds cost 2–8 % and save 145–400 MiB; at 768² they cost
    /// nothing (0–3 % faster) and save 213 MiB (FCN) and 404 MiB (PSP); at
    /// 1024², 1–2.5 % and 165–350 MiB (and about 2 % more for 43 MiB more
    /// with the passes of chunks, `WinogradPlan.itemsPerPass`). The
    /// default, 2¹⁹ (about 724²), lies between.
    public let boundedScratchPixels: Int
    public static let defaultBoundedScratchPixels = 1 << 19
    private let workspaces = Mutex<[PooledWorkspace]>([])

    public init(model: SegmentationModel, maximumPixels: Int = InferenceMemory.maximumPixels(),
                boundedScratchPixels: Int = Predictor.defaultBoundedScratchPixels) {
        self.model = model
        self.maximumPixels = maximumPixels
        self.boundedScratchPixels = boundedScratchPixels
    }

    /// A predictor whose pool starts with `workspace` (the trainer lends its
    /// own for validation, so scoring touches no new scratch memory). The
    /// caller must not use `workspace` while the predictor may.
    convenience init(model: SegmentationModel, lending workspace: Workspace,
                     boundedScratchPixels: Int = Predictor.defaultBoundedScratchPixels) {
        self.init(model: model, boundedScratchPixels: boundedScratchPixels)
        workspaces.withLock { $0.append(PooledWorkspace(workspace: workspace)) }
    }

    /// Loads a model directory or `model.tar.gz` (the best weights).
    public convenience init(contentsOf url: URL, maximumPixels: Int = InferenceMemory.maximumPixels()) throws {
        self.init(model: try ModelDirectory.read(url), maximumPixels: maximumPixels)
    }

    public var classCount: Int { model.configuration.classCount }

    /// Predicts one decoded image.
    public func predict(_ image: RGBImage) -> Prediction {
        predict(batch: normalize(image, model.normalization).reshaped(to: [1, 3, image.height, image.width]))[0]
    }

    /// Predicts encoded JPEG or PNG bytes (the format comes from the bytes);
    /// `name` is used in error messages.
    public func predict(imageData: Data, name: String = "image") throws -> Prediction {
        predict(try ImageCodec.decodeImage(imageData, file: name, maximumPixels: maximumPixels))
    }

    public func predict(contentsOf url: URL) throws -> Prediction {
        predict(try ImageCodec.decodeImage(contentsOf: url, maximumPixels: maximumPixels))
    }

    /// Predicts a normalized batch [N, 3, H, W] in one network evaluation.
    public func predict(batch images: Tensor) -> [Prediction] {
        let logits = network(images)
        let s = logits.shape
        guard s.batch > 1 else { return [Prediction(logits: logits)] }
        let count = s.channels * s.height * s.width
        return (0..<s.batch).map { n in
            Prediction(logits: Tensor(shape: [1, s.channels, s.height, s.width]) { out in
                logits.withPointer { out.baseAddress!.update(from: $0 + n * count, count: count) }
            })
        }
    }

    /// Logits [N, C, H, W] of a normalized batch, resized to the input size.
    public func network(_ images: Tensor) -> Tensor {
        let pooled = workspaces.withLock { $0.popLast() } ?? PooledWorkspace(workspace: Workspace())
        defer { workspaces.withLock { $0.append(pooled) } }
        let s = images.shape
        pooled.workspace.boundWinogradScratch(s.batch * s.height * s.width >= boundedScratchPixels)
        let context = ForwardContext(mode: .inference, workspace: pooled.workspace)
        return model.network.forward(images, parameters: model.parameters, context: context).0.logits
    }
}

/// A workspace in the predictor's pool. `Workspace` is not thread-safe and
/// stays non-Sendable; the pool hands each one to a single evaluation at a
/// time and takes it back whole, so moving it between threads is safe.
private struct PooledWorkspace: @unchecked Sendable {
    let workspace: Workspace
}

/// Per-pixel softmax over the class axis of [N, C, H, W] scores.
public func softmaxOverClasses(_ logits: Tensor) -> Tensor {
    let s = logits.shape
    precondition(s.rank == 4, "softmax expects [N, C, H, W], got \(s)")
    let plane = s.height * s.width
    return Tensor(shape: s) { out in
        logits.withPointer { z in
            let o = out.baseAddress!
            parallelFor(s.batch * plane, minimumChunk: 4096) { range in
                for p in range {
                    let (n, i) = p.quotientAndRemainder(dividingBy: plane)
                    let base = n * s.channels * plane + i
                    var largest = -Float.infinity
                    for c in 0..<s.channels { largest = max(largest, z[base + c * plane]) }
                    var sum: Float = 0
                    for c in 0..<s.channels {
                        let e = expf(z[base + c * plane] - largest)
                        o[base + c * plane] = e
                        sum += e
                    }
                    let inverse = 1 / sum
                    for c in 0..<s.channels { o[base + c * plane] *= inverse }
                }
            }
        }
    }
}
