import ArgumentParser
import Foundation
import Segmentation
import SegmentationServer

/// Errors the inference commands report after finishing what they could.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment images with a trained model; write masks, probabilities or overlays.",
        discussion: """
            Each IMAGE (JPEG or PNG; a directory means every image in it) is segmented at its own size. \
            Outputs go to --output, named after the input: NAME.png (8-bit class-id mask, the default), \
            NAME.rec (with --accept application/x-recordio-protobuf: one RecordIO record holding a SageMaker \
            Record protobuf with the softmax probabilities), NAME_overlay.png (with --overlay). \
            A bad image is reported and skipped; the exit code is non-zero if any failed.
            """)

    @Option(help: "A model directory or model.tar.gz.", completion: .file())
    var model: String

    @Option(help: "image/png, or application/x-recordio-protobuf (alias application/x-protobuf).")
    var accept: String = PredictionFormat.png.rawValue

    @Flag(help: "Also write NAME_overlay.png: the image tinted by class, with a legend.")
    var overlay = false

    @Option(help: "Output directory (created if missing).", completion: .directory)
    var output: String = "predictions"

    @Option(name: .customLong("max-pixels"),
            help: "Refuse images above N pixels (default: the largest whose inference fits in this machine's memory).")
    var maxPixels = InferenceMemory.maximumPixels()

    @Argument(help: "Images, or directories of images.", completion: .file())
    var images: [String]

    func validate() throws {
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive, got \(maxPixels)") }
        guard PredictionFormat(contentType: accept) != nil else {
            throw ValidationError("--accept '\(accept)' is not served: use image/png or application/x-recordio-protobuf")
        }
    }

    func run() throws {
        var failures: [String] = []
        var inputs: [URL] = []
        var missing = 0  // arguments that named no file or no image directory
        for argument in images {
            do {
                inputs += try ImageFiles.expand([argument])
            } catch {
                missing += 1
                failures.append(argument)
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
        }
        let files = PredictionFiles(directory: URL(fileURLWithPath: output), format: PredictionFormat(contentType: accept)!,
                                    overlay: overlay)
        try files.checkInputs(inputs)
        let predictor = try Predictor(contentsOf: URL(fileURLWithPath: model), maximumPixels: maxPixels)
        for (index, input) in inputs.enumerated() {
            do {
                let image = try predictor.decodeImage(contentsOf: input)
                let written = try files.write(predictor.predict(image), of: image, name: PredictionFiles.baseName(of: input))
                print("[\(index + 1)/\(inputs.count)] \(input.path) (\(image.width)×\(image.height)) → "
                      + written.map(\.lastPathComponent).joined(separator: ", "))
            } catch {
                failures.append(input.path)
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
        }
        if !failures.isEmpty {
            throw CommandFailure(description: "\(failures.count) of \(inputs.count + missing) inputs failed: \(failures.joined(separator: ", "))")
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model on labelled data: pixel accuracy, mIOU and per-class IoU.",
        discussion: """
            With --data DIR, scores the validation channel (validation/, validation_annotation/, and \
            label_map/validation_label_map.json when present), or --split train. With --manifest FILE, scores an \
            augmented manifest. mIOU is the mean over all classes, a class absent from both labels and predictions \
            counting 0 (as SageMaker and GluonCV); mIOU_present is the mean over classes that occur.
            """)

    @Option(help: "A model directory or model.tar.gz.", completion: .file())
    var model: String

    @Option(help: "A data directory in the channel layout.", completion: .directory)
    var data: String?

    @Option(help: "Which channel of --data to score: validation or train.")
    var split: String = "validation"

    @OptionGroup var manifest: ManifestOptions

    @Option(name: .customLong("validation-mini-batch-size"),
            help: "1 scores whole images at their own size; N > 1 scores center crops N at a time (as in training).")
    var validationMiniBatchSize = 1

    @Option(name: .customLong("crop-size"), help: "Crop side for --validation-mini-batch-size > 1 (default: the model's training crop).")
    var cropSize: Int?

    @Flag(help: "Print one JSON object (pixel_accuracy, mIOU, per_class_iou, mIOU_present).")
    var json = false

    func validate() throws {
        try manifest.check(data: data)
        guard DatasetSplit(rawValue: split) != nil else { throw ValidationError("--split must be validation or train") }
        guard validationMiniBatchSize > 0 else { throw ValidationError("--validation-mini-batch-size must be positive") }
        if let cropSize, cropSize <= 0 { throw ValidationError("--crop-size must be positive") }
    }

    func run() throws {
        let dataset = try manifest.source()?.dataset()
            ?? ChannelDataset(dataDirectory: URL(fileURLWithPath: data!), split: DatasetSplit(rawValue: split)!)
        guard dataset.count > 0 else { throw CommandFailure(description: "no labelled images to score") }
        let predictor = try Predictor(contentsOf: URL(fileURLWithPath: model))
        let showProgress = isatty(STDERR_FILENO) == 1
        let matrix = try predictor.evaluate(dataset, batchSize: validationMiniBatchSize, cropSize: cropSize) { done, total in
            if showProgress { FileHandle.standardError.write(Data("\rscored \(done)/\(total) images\(done == total ? "\n" : "")".utf8)) }
        }
        if json {
            try printJSON(matrix.report)
        } else {
            print(matrix.table(imageCount: dataset.count))
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over HTTP with SageMaker's hosting contract (GET /ping, POST /invocations).",
        discussion: """
            POST /invocations takes Content-Type image/jpeg, image/png or application/x-image and answers \
            Accept image/png (class-id mask; also for no Accept or */*) or application/x-recordio-protobuf \
            (alias application/x-protobuf). Errors: 415 content type, 406 accept, 400 undecodable image, \
            413 above the payload limit. SAGEMAKER_BIND_TO_PORT and SAGEMAKER_MAX_PAYLOAD_IN_MB override \
            --port and --max-payload-mb. Requests beyond --workers wait in a queue.
            """)

    @Option(help: "A model directory or model.tar.gz.", completion: .file())
    var model: String?

    @Flag(help: "SageMaker container mode: load the model from /opt/ml/model.")
    var sagemaker = false

    @Option(name: .customLong("sagemaker-root"), help: "The directory standing for / in container mode (for tests).", completion: .directory)
    var sagemakerRoot: String?

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(name: .customLong("max-payload-mb"), help: "Largest request body, in MiB.")
    var maxPayloadMB = 10

    @Option(help: "Network evaluations at once (each already uses every core).")
    var workers = 1

    @Option(name: .customLong("max-pixels"),
            help: "Refuse (413) decoded images above this many pixels (default: what --workers evaluations fit in 75 % of this machine's memory at about 0.45 GB per megapixel).")
    var maxPixels: Int?

    func validate() throws {
        guard (model != nil) != sagemaker else { throw ValidationError("give exactly one of --model or --sagemaker") }
        if sagemakerRoot != nil && !sagemaker { throw ValidationError("--sagemaker-root needs --sagemaker") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard maxPayloadMB > 0 else { throw ValidationError("--max-payload-mb must be positive") }
        guard workers > 0 else { throw ValidationError("--workers must be positive") }
        if let maxPixels, maxPixels <= 0 { throw ValidationError("--max-pixels must be positive") }
    }

    func run() async throws {
        guard sagemaker else { return try await serve(from: URL(fileURLWithPath: model!)) }
        let environment = SageMakerEnvironment(root: URL(fileURLWithPath: sagemakerRoot ?? "/"))
        do {
            try await serve(from: environment.modelDirectory)
        } catch {
            environment.writeFailure("\(error)")
            throw error
        }
    }

    private func serve(from location: URL) async throws {
        let configuration = try InferenceServer.Configuration(host: host, port: port, maximumPayloadBytes: maxPayloadMB << 20,
                                                              workers: workers, maximumPixels: maxPixels)
            .applyingEnvironment(ProcessInfo.processInfo.environment)
        let predictor = try Predictor(contentsOf: location)
        let network = predictor.model.configuration
        let server = InferenceServer(predictor: predictor, configuration: configuration)
        try await server.run(handleSignals: true) { port in
            let line = "serving \(network.algorithm.rawValue) \(network.backbone.rawValue) (\(network.classCount) classes) from \(location.path) "
                + "on http://\(configuration.host):\(port) (payload limit \(configuration.maximumPayloadBytes >> 20) MiB, \(configuration.workers) worker(s))\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
