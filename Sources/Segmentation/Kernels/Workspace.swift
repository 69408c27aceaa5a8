/// Reusable scratch memory for kernels (im2col columns, per-worker partial
/// gradients).
///
/// It grows to the largest request and never shrinks, so a training loop
/// touches fresh pages only on its first step. Not thread-safe: one network
/// evaluation at a time uses one workspace; kernels carve per-worker slices
/// out of a single request.
public final class Workspace {
    private var storage: TensorStorage
    /// Scalars of the column matrix that all workers share for one image
    /// (32 MB): a deep layer whose image has more builds its columns block
    /// by block of input channels (`sharedBlockChannels`). Tests lower it to
    /// exercise the blocks.
    let sharedColumnBudget: Int

    public convenience init() {
        self.init(sharedColumnBudget: 8 << 20)
    }

    init(sharedColumnBudget: Int) {
        storage = TensorStorage(uninitializedCount: 0)
        self.sharedColumnBudget = sharedColumnBudget
    }

    /// Current capacity in scalars.
    public var capacity: Int { storage.count }

    /// A buffer of at least `count` scalars with undefined contents, valid
    /// until the next call to `scratch`.
    func scratch(_ count: Int) -> UnsafeMutablePointer<Float> {
        if storage.count < count {
            storage = TensorStorage(uninitializedCount: count)
        }
        return storage.pointer
    }
}
