import ArgumentParser
import Foundation
import Segmentation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode every image and annotation of a dataset and report sizes, class histograms and bad files.",
        discussion: """
            With --data DIR, inspects the train and validation channels of the SageMaker layout \
            (train/, train_annotation/, validation/, validation_annotation/, optional label_map/). \
            With --manifest FILE, inspects an augmented manifest (JSON Lines). Exits non-zero, after \
            printing the report, when any file is unmatched, damaged, of mismatched size or out of range.
            """)

    @Option(help: "A data directory in the channel layout.", completion: .directory)
    var data: String?

    @OptionGroup var manifest: ManifestOptions

    @Option(name: .customLong("num-classes"), help: "Check that every label (after the label map) is below N or 255.")
    var numClasses: Int?

    @Option(name: .customLong("max-pixels"), help: "Refuse images whose declared size exceeds N pixels.")
    var maxPixels: Int = ImageCodec.defaultMaximumPixels

    func validate() throws {
        try manifest.check(data: data)
        if let numClasses, !(1...255).contains(numClasses) {
            throw ValidationError("--num-classes must be in 1…255, got \(numClasses)")
        }
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive, got \(maxPixels)") }
    }

    func run() throws {
        let source = try manifest.source()?.inspectionSource ?? .dataDirectory(URL(fileURLWithPath: data!))
        let report = DatasetInspection(source: source, classCount: numClasses, maximumPixels: maxPixels).run()
        print(report)
        if report.hasProblems { throw DatasetError.inspectionFailed(problemCount: report.problemCount) }
    }
}
