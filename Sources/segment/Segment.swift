import ArgumentParser
import Segmentation

@main
struct Segment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Train and run semantic-segmentation networks (FCN, PSP, DeepLabV3 on dilated ResNet) on the CPU.",
        subcommands: [Train.self, Predict.self, Evaluate.self, Serve.self, Import.self, Export.self, Describe.self, Pretrained.self, Inspect.self, Bench.self, Demo.self])
}
