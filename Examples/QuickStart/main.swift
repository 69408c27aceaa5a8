// The README's "Use the library from Swift" example, built and run by the
// test suite (ExampleTests) so it cannot rot: the lines between the markers
// must equal the README's code block.
import Foundation
import Segmentation

// README example begin
let root = FileManager.default.temporaryDirectory.appendingPathComponent("segmentation-example")
let data = root.appendingPathComponent("data"), model = root.appendingPathComponent("model")
try SyntheticShapes(classCount: 3).write(to: data, trainCount: 4, validationCount: 2)
let (configuration, _) = try TrainingConfiguration.parse([
    "num_classes": "3", "num_training_samples": "4", "mini_batch_size": "4", "epochs": "1",
    "crop_size": "64", "base_size": "96", "use_pretrained_model": "False"])
let epochs = try Trainer(configuration: configuration, dataDirectory: data, modelDirectory: model).run()
let predictor = try Predictor(contentsOf: model)
let mask = try predictor.predict(contentsOf: data.appendingPathComponent("validation/validation_0000.jpg")).mask
print("trained one step: validation mIOU \(epochs[0].validationMeanIoU); mask \(mask.width)×\(mask.height)")
// README example end
try? FileManager.default.removeItem(at: root)
