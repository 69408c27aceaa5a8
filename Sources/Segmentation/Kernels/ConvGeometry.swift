/// The shape arithmetic of one 2-D convolution (or pooling window).
///
/// N batch, C input channels, K output channels, H×W input, R×S kernel,
/// P×Q output; `P = (H + 2·padH − dilH·(R − 1) − 1) / strideH + 1`.
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var inputChannels: Int
    public var outputChannels: Int
    public var inputHeight: Int
    public var inputWidth: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var paddingHeight: Int
    public var paddingWidth: Int
    public var dilationHeight: Int
    public var dilationWidth: Int

    /// A square-kernel convolution with equal stride, padding and dilation on both axes.
    public init(
        batch: Int, inputChannels: Int, outputChannels: Int,
        inputHeight: Int, inputWidth: Int,
        kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1
    ) {
        self.init(
            batch: batch, inputChannels: inputChannels, outputChannels: outputChannels,
            inputHeight: inputHeight, inputWidth: inputWidth,
            kernelHeight: kernelSize, kernelWidth: kernelSize,
            strideHeight: stride, strideWidth: stride,
            paddingHeight: padding, paddingWidth: padding,
            dilationHeight: dilation, dilationWidth: dilation)
    }

    public init(
        batch: Int, inputChannels: Int, outputChannels: Int,
        inputHeight: Int, inputWidth: Int,
        kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int, strideWidth: Int,
        paddingHeight: Int, paddingWidth: Int,
        dilationHeight: Int, dilationWidth: Int
    ) {
        precondition(batch > 0 && inputChannels > 0 && outputChannels > 0, "empty convolution")
        precondition(kernelHeight > 0 && kernelWidth > 0, "kernel must be at least 1×1")
        precondition(strideHeight > 0 && strideWidth > 0, "stride must be positive")
        precondition(dilationHeight > 0 && dilationWidth > 0, "dilation must be positive")
        precondition(paddingHeight >= 0 && paddingWidth >= 0, "padding must be non-negative")
        self.batch = batch
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.paddingHeight = paddingHeight
        self.paddingWidth = paddingWidth
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        precondition(
            outputHeight > 0 && outputWidth > 0,
            "convolution \(self) has an empty output")
    }

    public var outputHeight: Int {
        (inputHeight + 2 * paddingHeight - dilationHeight * (kernelHeight - 1) - 1) / strideHeight + 1
    }
    public var outputWidth: Int {
        (inputWidth + 2 * paddingWidth - dilationWidth * (kernelWidth - 1) - 1) / strideWidth + 1
    }

    public var inputShape: Shape { [batch, inputChannels, inputHeight, inputWidth] }
    public var outputShape: Shape { [batch, outputChannels, outputHeight, outputWidth] }
    public var weightShape: Shape { [outputChannels, inputChannels, kernelHeight, kernelWidth] }

    /// Rows of the im2col matrix: C·R·S.
    var columnRows: Int { inputChannels * kernelHeight * kernelWidth }
    /// This convolution on `count` of its input channels, as if they were
    /// the whole input: im2col of a block of channels then fills its own
    /// column rows from 0 (`sharedBlockChannels`).
    func onInputChannels(_ count: Int) -> ConvGeometry {
        var block = self
        block.inputChannels = count
        return block
    }
    /// Columns of the im2col matrix: P·Q.
    var outputPlane: Int { outputHeight * outputWidth }
    var inputPlane: Int { inputHeight * inputWidth }

    /// 1×1, stride 1, no padding: the input image *is* its column matrix.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && paddingHeight == 0 && paddingWidth == 0
    }

    /// Multiply-adds of one forward pass: N·K·C·R·S·P·Q.
    public var multiplyAdds: Int { batch * outputChannels * columnRows * outputPlane }

    public var description: String {
        "conv \(kernelHeight)×\(kernelWidth) \(inputChannels)→\(outputChannels) "
            + "stride \(strideHeight),\(strideWidth) pad \(paddingHeight),\(paddingWidth) "
            + "dilation \(dilationHeight),\(dilationWidth) on \(inputShape)"
    }
}
