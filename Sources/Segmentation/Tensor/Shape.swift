/// The extent of a tensor along each axis, outermost first.
///
/// Activations are NCHW (`[batch, channels, height, width]`); convolution
/// weights are `[outputChannels, inputChannels, kernelHeight, kernelWidth]`
/// (the torchvision and GluonCV layout); per-channel vectors are `[channels]`.
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var dimensions: [Int]

    public init(_ dimensions: [Int]) {
        precondition(dimensions.allSatisfy { $0 >= 0 }, "negative dimension in shape \(dimensions)")
        self.dimensions = dimensions
    }

    public init(arrayLiteral elements: Int...) {
        self.init(elements)
    }

    public var rank: Int { dimensions.count }
    public var elementCount: Int { dimensions.reduce(1, *) }
    public subscript(axis: Int) -> Int { dimensions[axis] }

    /// NCHW accessors; valid for rank-4 shapes only.
    public var batch: Int { checkedNCHW(0) }
    public var channels: Int { checkedNCHW(1) }
    public var height: Int { checkedNCHW(2) }
    public var width: Int { checkedNCHW(3) }

    private func checkedNCHW(_ axis: Int) -> Int {
        precondition(rank == 4, "shape \(self) is not NCHW")
        return dimensions[axis]
    }

    /// `[8, 2048, 60, 60]`
    public var description: String {
        "[" + dimensions.map(String.init).joined(separator: ", ") + "]"
    }
}
