/// Reusable scratch memory for kernels (im2col columns, per-worker partial
/// gradients).
///
/// It grows to the largest request and never shrinks, so a training loop
/// touches fresh pages only on its first step. Not thread-safe: one network
/// evaluation at a time uses one workspace; kernels carve per-worker slices
/// out of a single request.
public final class Workspace {
    private var storage: TensorStorage
    /// The Double sums of the weight gradients' images (`ExactSum.swift`),
    /// used only by batches of more than two images and by data-parallel
    /// ranks; apart from `storage` so that a kernel can hold both.
    private var sums: UnsafeMutableBufferPointer<Double> = .init(start: nil, count: 0)
    /// Scalars of the column matrix that all workers share for one image
    /// (32 MB): a deep layer whose image has more builds its columns block
    /// by block of input channels (`sharedBlockChannels`). Tests lower it to
    /// exercise the blocks.
    let sharedColumnBudget: Int
    /// Whether the Winograd path keeps its scratch within
    /// `sharedColumnBudget` too (`WinogradPlan`): its transformed kernels
    /// (four times a layer's 3×3 weights, 302 MB for PSP's head) in blocks of
    /// channels, its chunks of tiles smaller. A training step holds its
    /// workspace through the backward, beside every saved activation, so
    /// `Workspace.training()` always bounds them. An inference workspace
    /// leaves them whole and wide, which is fastest on small images, unless
    /// the evaluation asks for bounds (`boundWinogradScratch(_:)`: a
    /// `Predictor` does for large images).
    private(set) var boundsWinogradScratch: Bool
    /// Set by `Workspace.training()`: bounded whatever an evaluation asks.
    private let alwaysBoundsWinogradScratch: Bool

    /// A workspace for inference.
    public convenience init() {
        self.init(sharedColumnBudget: 8 << 20)
    }

    /// A workspace for training steps (and the validation between epochs
    /// that borrows it): the Winograd path's scratch bounded by the same
    /// 32 MB budget as the shared column matrices.
    public static func training() -> Workspace {
        Workspace(sharedColumnBudget: 8 << 20, boundsWinogradScratch: true)
    }

    init(sharedColumnBudget: Int, boundsWinogradScratch: Bool = false) {
        storage = TensorStorage(uninitializedCount: 0)
        self.sharedColumnBudget = sharedColumnBudget
        self.boundsWinogradScratch = boundsWinogradScratch
        alwaysBoundsWinogradScratch = boundsWinogradScratch
    }

    /// Whether the next evaluations bound the Winograd scratch (a training
    /// workspace always does). Turning the bounds on releases the buffer, so
    /// that what unbounded layers grew (340 MB for FCN: its head's whole
    /// transformed kernels and two wide chunks) is not held beside a large
    /// image's activations; it grows again as the bounded layers need.
    func boundWinogradScratch(_ bounded: Bool) {
        let bounds = bounded || alwaysBoundsWinogradScratch
        if bounds && !boundsWinogradScratch { storage = TensorStorage(uninitializedCount: 0) }
        boundsWinogradScratch = bounds
    }

    /// Current capacity in scalars.
    public var capacity: Int { storage.count }

    /// A buffer of at least `count` scalars with undefined contents, valid
    /// until the next call to `scratch`.
    func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        if storage.count < count {
            // The old buffer goes first: the contents are undefined anyway,
            // and holding both would add the old size to the peak.
            storage = TensorStorage(uninitializedCount: 0)
            storage = TensorStorage(uninitializedCount: count)
        }
        return storage.pointer
    }

    /// A buffer of at least `count` Doubles with undefined contents, valid
    /// until the next call to `sums`; it does not move `scratch`'s buffer.
    func sums(_ count: Int) -> UnsafeMutablePointer<Double> {
        if sums.count < count {
            sums.deallocate()
            sums = .allocate(capacity: count)
        }
        return sums.baseAddress!
    }

    deinit { sums.deallocate() }
}
