import ArgumentParser
import Foundation
import Segmentation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main job: generate a synthetic data set, train a ResNet-50 FCN on it from scratch, evaluate it and draw its predictions.",
        discussion: """
            Writes OUTPUT/data (textured shapes on textured backgrounds in the SageMaker channel layout), \
            OUTPUT/model (the model directory with training-curves.png) and OUTPUT/predictions (masks and \
            colour overlays of validation images), then prints the validation mIOU beside the mIOU of predicting \
            the most frequent class everywhere. About ten minutes on 2 cores.
            """)

    @Option(help: "Where to write data/, model/ and predictions/.", completion: .directory)
    var output: String = "demo"

    @Flag(name: .customLong("data-only"), help: "Only write the synthetic data set to OUTPUT/data (to try segment train on it).")
    var dataOnly = false

    @Option(name: .customLong("train-images"), help: "Training images to generate.")
    var trainImages = 400

    @Option(name: .customLong("validation-images"), help: "Validation images to generate.")
    var validationImages = 40

    @Option(help: "Classes, background included (2-\(SyntheticShapes.allClassNames.count)).")
    var classes = 4

    @Option(name: .customLong("set"), help: "key=value hyperparameter override of the demo's recipe (repeatable), e.g. epochs=4.")
    var overrides: [String] = []

    func validate() throws {
        guard (2...SyntheticShapes.allClassNames.count).contains(classes) else {
            throw ValidationError("--classes must be 2-\(SyntheticShapes.allClassNames.count)")
        }
        guard trainImages > 0, validationImages > 0 else { throw ValidationError("--train-images and --validation-images must be positive") }
    }

    func run() throws {
        var demo = Segmentation.Demo(output: URL(fileURLWithPath: output))
        demo.shapes = SyntheticShapes(classCount: classes)
        demo.trainImages = trainImages
        demo.validationImages = validationImages
        if dataOnly {
            try demo.prepareOutput()
            try demo.shapes.write(to: demo.dataDirectory, trainCount: trainImages, validationCount: validationImages)
            print("data: \(demo.dataDirectory.path) (\(trainImages) training, \(validationImages) validation images; classes: \(demo.shapes.classNames.joined(separator: ", ")))")
            return
        }
        demo.overrides = overrides
        let result = try demo.run(events: TrainingProgressPrinter().handle)
        let names = demo.shapes.classNames
        print("")
        if let last = result.epochs.last {
            print(String(format: "final validation mIOU %.4f, pixel accuracy %.4f (epoch %d)",
                         last.validationMeanIoU, last.validationPixelAccuracy, last.epoch))
        }
        print(String(format: "best model (model_best, used for the predictions): mIOU %.4f, pixel accuracy %.4f on %d validation images",
                     result.validation.meanIoU, result.validation.pixelAccuracy, validationImages))
        print(String(format: "baseline (always '%@'): mIOU %.4f, pixel accuracy %.4f",
                     names[result.baselineClass], result.baseline.meanIoU, result.baseline.pixelAccuracy))
        for (id, iou) in result.validation.classIoU.enumerated() {
            let padded = names[id].padding(toLength: max(18, names[id].count), withPad: " ", startingAt: 0)
            print("  \(padded) IoU \(String(format: "%.4f", iou))")
        }
        print("data:        \(demo.dataDirectory.path)")
        print("model:       \(demo.modelDirectory.path) (model.tar.gz, model_best.safetensors, metrics.jsonl, training-curves.png)")
        print("predictions: \(demo.predictionsDirectory.path) (\(result.predictionFiles.count) files: NAME.png masks, NAME_overlay.png pictures)")
        print(String(format: "took %.0f s", result.seconds))
    }
}
