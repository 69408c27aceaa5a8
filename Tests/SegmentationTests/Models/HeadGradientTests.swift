import Segmentation
import SegmentationTestSupport
import Testing

/// Each head's input gradient (what flows into the backbone) against finite
/// differences, in training mode (batch statistics, dropout with a fixed
/// seed), on a small feature map. The heads are nonlinear: besides ReLU, the
/// pooled branches normalize a 1×1 map over only N values, whose BN output is
/// nearly ±1 and changes sharply when two of the values are close. ε = 1e-3
/// keeps the probes linear (with ε = 1e-2 a few DeepLab probes were off by
/// 10 %); we allow 2 % of the gradient scale plus 2 % relative.
@Suite("Head gradients")
struct HeadGradientTests {
    enum Kind: String, CaseIterable, Sendable { case fcn, psp, deeplab }

    @Test(arguments: Kind.allCases)
    func inputGradient(_ kind: Kind) {
        var builder = ParameterBuilder(seed: 3)
        let head: SegmentationHead
        switch kind {
        case .fcn: head = .fcn(FCNHead(inputChannels: 16, classCount: 3, name: "head", builder: &builder))
        case .psp: head = .psp(PSPHead(inputChannels: 16, classCount: 3, name: "head", builder: &builder))
        case .deeplab: head = .deeplab(DeepLabHead(inputChannels: 16, classCount: 3, name: "head", builder: &builder))
        }
        checkInputGradient(head, parameters: builder.store, input: [4, 16, 5, 7], probes: 96, seeds: (5, 1))
    }

    /// DeepLab's backward uses the head's own width (issue 15, defect 7: it
    /// used 256 whatever the width, so a narrower head crashed).
    @Test func deepLabOfAnotherWidth() {
        var builder = ParameterBuilder(seed: 4)
        let head = SegmentationHead.deeplab(DeepLabHead(inputChannels: 12, classCount: 2, width: 8, name: "head", builder: &builder))
        checkInputGradient(head, parameters: builder.store, input: [3, 12, 4, 5], probes: 64, seeds: (6, 2))
    }

    /// `head`'s input gradient against finite differences on a uniform input
    /// of `input` shape; `seeds`: (the input's, the forward context's).
    func checkInputGradient(_ head: SegmentationHead, parameters: ParameterStore, input: Shape, probes: Int,
                            seeds: (input: UInt64, context: UInt64), sourceLocation: SourceLocation = #_sourceLocation) {
        var generator = SplitMix64(seed: seeds.input)
        let x = Tensor.uniform(input, in: -1...1, using: &generator)
        checkGradients(
            inputs: [x], epsilon: 1e-3, absoluteTolerance: 2e-2, relativeTolerance: 2e-2, probesPerInput: probes,
            forward: { inputs in
                head.forward(inputs[0], parameters: parameters, context: ForwardContext(mode: .training, seed: seeds.context)).0
            },
            backward: { inputs, dy in
                let context = ForwardContext(mode: .training, seed: seeds.context)
                let (_, cache) = head.forward(inputs[0], parameters: parameters, context: context)
                var gradients = parameters.zerosLikeTrainable()
                return [head.backward(dy, cache: cache!, parameters: parameters, gradients: &gradients, context: context)]
            },
            sourceLocation: sourceLocation)
    }
}
