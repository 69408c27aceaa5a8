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

    @Option(help: "An augmented manifest (JSON Lines) instead of --data.", completion: .file())
    var manifest: String?

    @Option(name: .customLong("attribute-names"),
            help: "With --manifest: the image and annotation keys, e.g. source-ref,my-labels-ref.")
    var attributeNames: String?

    @Option(name: .customLong("s3-root"), help: "With --manifest: read s3://bucket/key from DIR/bucket/key.",
            completion: .directory)
    var s3Root: String?

    @Option(name: .customLong("label-map"), help: "With --manifest: a label map JSON file (default identity).",
            completion: .file())
    var labelMap: String?

    @Option(name: .customLong("num-classes"), help: "Check that every label (after the label map) is below N or 255.")
    var numClasses: Int?

    @Option(name: .customLong("max-pixels"), help: "Refuse images whose declared size exceeds N pixels.")
    var maxPixels: Int = ImageCodec.defaultMaximumPixels

    func validate() throws {
        guard (data == nil) != (manifest == nil) else { throw ValidationError("give exactly one of --data or --manifest") }
        if data != nil, attributeNames != nil || s3Root != nil || labelMap != nil {
            throw ValidationError("--attribute-names, --s3-root and --label-map go with --manifest")
        }
        if let numClasses, !(1...255).contains(numClasses) {
            throw ValidationError("--num-classes must be in 1…255, got \(numClasses)")
        }
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive, got \(maxPixels)") }
    }

    func run() throws {
        let source: DatasetInspection.Source
        if let data {
            source = .dataDirectory(URL(fileURLWithPath: data))
        } else {
            let names = attributeNames.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            source = .manifest(
                URL(fileURLWithPath: manifest!), attributeNames: names,
                s3Root: s3Root.map { URL(fileURLWithPath: $0) },
                labelMap: try labelMap.map { try LabelMap.load(contentsOf: URL(fileURLWithPath: $0)) } ?? .identity)
        }
        let report = DatasetInspection(source: source, classCount: numClasses, maximumPixels: maxPixels).run()
        print(report)
        if report.hasProblems { throw DatasetError.inspectionFailed(problemCount: report.problemCount) }
    }
}
