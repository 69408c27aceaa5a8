import ArgumentParser
import Segmentation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the GEMM-bound layers (build with -c release).",
        subcommands: [])
}
