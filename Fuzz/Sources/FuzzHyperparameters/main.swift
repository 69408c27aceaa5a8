import FuzzSupport
import Segmentation

// hyperparameters.json (SageMaker's all-string values, or native JSON
// values); a configuration that parses is rendered back and parsed again.
fuzz { data in
    guard let (configuration, _) = try? TrainingConfiguration.parse(json: data, file: "hyperparameters.json") else {
        return
    }
    _ = try? TrainingConfiguration.parse(configuration.hyperparameters)
}
