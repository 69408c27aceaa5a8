import Foundation

/// The learning-rate schedule (SPEC §5).
public enum LearningRateScheduler: String, Sendable, Codable, CaseIterable {
    case poly, cosine, step
}

/// The optimizer (SPEC §5).
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    case adam, adagrad, nag, rmsprop, sgd
}

/// Every SageMaker hyperparameter of the semantic-segmentation algorithm
/// (SPEC §1), plus the internal `_`-prefixed options. Defaults live in one
/// place, `TrainingConfiguration.specifications`, and are parsed by the same
/// code as user values.
public struct TrainingConfiguration: Sendable, Equatable {
    public var backbone: ResNetDepth
    public var usePretrainedModel: Bool
    public var algorithm: SegmentationAlgorithm
    /// Required: no default (0 until set).
    public var numClasses: Int
    /// Required: no default (0 until set).
    public var numTrainingSamples: Int
    public var baseSize: Int
    public var cropSize: Int
    public var earlyStopping: Bool
    public var earlyStoppingMinEpochs: Int
    public var earlyStoppingPatience: Int
    public var earlyStoppingTolerance: Double
    public var epochs: Int
    public var gamma1: Double
    public var gamma2: Double
    public var learningRate: Double
    public var lrScheduler: LearningRateScheduler
    public var lrSchedulerFactor: Double
    /// Epochs after which the step schedule multiplies the LR by the factor.
    public var lrSchedulerStep: [Int]?
    public var miniBatchSize: Int
    public var momentum: Double
    public var optimizer: OptimizerKind
    public var syncBN: Bool
    public var validationMiniBatchSize: Int
    public var weightDecay: Double
    /// `_aux_weight`: weight of the aux loss (SageMaker's hidden default 0.5).
    public var auxiliaryWeight: Double
    /// `_seed`: seeds initialization, shuffling, augmentation and dropout.
    public var seed: UInt64
    /// `_logging_frequency`: iterations between progress lines.
    public var loggingFrequency: Int

    /// Every default of the table, and 0 for the two required keys.
    public static let defaults = TrainingConfiguration()

    /// A configuration with every default and the two required keys set.
    /// Call `validate()` before training with values set by hand.
    public init(numClasses: Int, numTrainingSamples: Int) {
        self = Self.defaults
        self.numClasses = numClasses
        self.numTrainingSamples = numTrainingSamples
    }

    /// The defaults, each read from the table (`specifications`), the one
    /// place they are written.
    private init() {
        func value<T: HyperparameterText>(_ key: String) -> T {
            guard let text = Self.specification(key)?.defaultValue, let value = T(hyperparameterText: text) else {
                preconditionFailure("the table has no usable default for \(key)")
            }
            return value
        }
        backbone = value("backbone")
        usePretrainedModel = value("use_pretrained_model")
        algorithm = value("algorithm")
        numClasses = 0
        numTrainingSamples = 0
        baseSize = value("base_size")
        cropSize = value("crop_size")
        earlyStopping = value("early_stopping")
        earlyStoppingMinEpochs = value("early_stopping_min_epochs")
        earlyStoppingPatience = value("early_stopping_patience")
        earlyStoppingTolerance = value("early_stopping_tolerance")
        epochs = value("epochs")
        gamma1 = value("gamma1")
        gamma2 = value("gamma2")
        learningRate = value("learning_rate")
        lrScheduler = value("lr_scheduler")
        lrSchedulerFactor = value("lr_scheduler_factor")
        lrSchedulerStep = nil
        miniBatchSize = value("mini_batch_size")
        momentum = value("momentum")
        optimizer = value("optimizer")
        syncBN = value("syncbn")
        validationMiniBatchSize = value("validation_mini_batch_size")
        weightDecay = value("weight_decay")
        auxiliaryWeight = value("_aux_weight")
        seed = value("_seed")
        loggingFrequency = value("_logging_frequency")
    }
}

/// A value type a hyperparameter's default is written in: SageMaker's
/// string form ("True", "0.001", "resnet-50").
protocol HyperparameterText {
    init?(hyperparameterText: String)
}

extension Bool: HyperparameterText {
    init?(hyperparameterText text: String) {
        switch text.lowercased() {
        case "true": self = true
        case "false": self = false
        default: return nil
        }
    }
}

extension Int: HyperparameterText {
    init?(hyperparameterText text: String) { self.init(text) }
}

extension UInt64: HyperparameterText {
    init?(hyperparameterText text: String) { self.init(text) }
}

extension Double: HyperparameterText {
    init?(hyperparameterText text: String) { self.init(text) }
}

extension HyperparameterText where Self: RawRepresentable, RawValue == String {
    init?(hyperparameterText text: String) { self.init(rawValue: text) }
}

extension ResNetDepth: HyperparameterText {}
extension SegmentationAlgorithm: HyperparameterText {}
extension LearningRateScheduler: HyperparameterText {}
extension OptimizerKind: HyperparameterText {}

/// A hyperparameter's problem, naming the key, the value and what is valid.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case unknownKey(String, suggestion: String?)
    case missing(String)
    case invalid(key: String, value: String, expected: String)
    case malformedFile(String, reason: String)
    /// A `--set` argument that is not `key=value`.
    case malformedOverride(String)

    public var description: String {
        switch self {
        case let .unknownKey(key, suggestion):
            return "unknown hyperparameter '\(key)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
        case let .missing(key):
            return "missing required hyperparameter '\(key)'"
        case let .invalid(key, value, expected):
            return "hyperparameter '\(key)' = '\(value)' is invalid: expected \(expected)"
        case let .malformedFile(file, reason):
            return "\(file): \(reason)"
        case let .malformedOverride(text):
            return "--set expects key=value, got '\(text)'"
        }
    }
}

extension TrainingConfiguration {
    /// One hyperparameter: its SageMaker key, its default in SageMaker's string
    /// form (nil = required or optional without default), and how to parse,
    /// check and print it.
    public struct Specification: Sendable {
        public let key: String
        public let defaultValue: String?
        public let valid: String
        public let meaning: String
        let apply: @Sendable (inout TrainingConfiguration, String) throws -> Void
        let render: @Sendable (TrainingConfiguration) -> String?
    }

    // MARK: value parsers (each throws with the key, the value and the valid range)

    static func boolean(_ key: String, _ text: String) throws -> Bool {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true": return true
        case "false": return false
        default: throw ConfigurationError.invalid(key: key, value: text, expected: "true or false")
        }
    }

    static func integer(_ key: String, _ text: String, _ range: ClosedRange<Int>, _ described: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var value = Int(trimmed)
        if value == nil, let real = Double(trimmed), real.rounded() == real, abs(real) < 1e15 { value = Int(real) }
        guard let value, range.contains(value) else {
            throw ConfigurationError.invalid(key: key, value: text, expected: described)
        }
        return value
    }

    static func real(_ key: String, _ text: String, _ check: (Double) -> Bool, _ described: String) throws -> Double {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, check(value) else {
            throw ConfigurationError.invalid(key: key, value: text, expected: described)
        }
        return value
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ text: String, _ type: T.Type) throws -> T
    where T.RawValue == String {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let value = T(rawValue: trimmed) else {
            throw ConfigurationError.invalid(key: key, value: text, expected: "one of " + T.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return value
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)"
    }

    /// The table of SPEC §1, in its order, then the internal keys.
    public static let specifications: [Specification] = [
        .init(key: "backbone", defaultValue: "resnet-50", valid: "resnet-50, resnet-101", meaning: "encoder",
              apply: { $0.backbone = try choice("backbone", $1, ResNetDepth.self) }, render: { $0.backbone.rawValue }),
        .init(key: "use_pretrained_model", defaultValue: "True", valid: "bool", meaning: "start the backbone from ImageNet weights",
              apply: { $0.usePretrainedModel = try boolean("use_pretrained_model", $1) }, render: { $0.usePretrainedModel ? "True" : "False" }),
        .init(key: "algorithm", defaultValue: "fcn", valid: "fcn, psp, deeplab", meaning: "decoder",
              apply: { $0.algorithm = try choice("algorithm", $1, SegmentationAlgorithm.self) }, render: { $0.algorithm.rawValue }),
        .init(key: "num_classes", defaultValue: nil, valid: "2 ≤ int ≤ 254 (required)", meaning: "classes to segment",
              apply: { $0.numClasses = try integer("num_classes", $1, 2...254, "an integer from 2 to 254") },
              render: { "\($0.numClasses)" }),
        .init(key: "num_training_samples", defaultValue: nil, valid: "int > 0 (required)", meaning: "sets up the LR schedule",
              apply: { $0.numTrainingSamples = try integer("num_training_samples", $1, 1...Int.max, "an integer > 0") },
              render: { "\($0.numTrainingSamples)" }),
        .init(key: "base_size", defaultValue: "520", valid: "int > 16", meaning: "random rescale base",
              apply: { $0.baseSize = try integer("base_size", $1, 17...100_000, "an integer > 16") }, render: { "\($0.baseSize)" }),
        .init(key: "crop_size", defaultValue: "240", valid: "int > 16, rounded up to a multiple of 8", meaning: "training crop side",
              apply: { $0.cropSize = try integer("crop_size", $1, 17...100_000, "an integer > 16") }, render: { "\($0.cropSize)" }),
        .init(key: "early_stopping", defaultValue: "False", valid: "bool", meaning: "stop on stalled validation mIOU",
              apply: { $0.earlyStopping = try boolean("early_stopping", $1) }, render: { $0.earlyStopping ? "True" : "False" }),
        .init(key: "early_stopping_min_epochs", defaultValue: "5", valid: "int ≥ 0", meaning: "never stop before this many epochs",
              apply: { $0.earlyStoppingMinEpochs = try integer("early_stopping_min_epochs", $1, 0...Int.max, "an integer ≥ 0") },
              render: { "\($0.earlyStoppingMinEpochs)" }),
        .init(key: "early_stopping_patience", defaultValue: "4", valid: "int ≥ 0", meaning: "epochs without improvement before stopping",
              apply: { $0.earlyStoppingPatience = try integer("early_stopping_patience", $1, 0...Int.max, "an integer ≥ 0") },
              render: { "\($0.earlyStoppingPatience)" }),
        .init(key: "early_stopping_tolerance", defaultValue: "0.0", valid: "0 ≤ float ≤ 1",
              meaning: "relative mIOU improvement below this = no improvement",
              apply: { $0.earlyStoppingTolerance = try real("early_stopping_tolerance", $1, { (0...1).contains($0) }, "a number from 0 to 1") },
              render: { format($0.earlyStoppingTolerance) }),
        .init(key: "epochs", defaultValue: "10", valid: "int > 0", meaning: "training epochs",
              apply: { $0.epochs = try integer("epochs", $1, 1...Int.max, "an integer > 0") }, render: { "\($0.epochs)" }),
        .init(key: "gamma1", defaultValue: "0.9", valid: "0 ≤ float ≤ 1", meaning: "rmsprop: decay of the squared-gradient average",
              apply: { $0.gamma1 = try real("gamma1", $1, { (0...1).contains($0) }, "a number from 0 to 1") }, render: { format($0.gamma1) }),
        .init(key: "gamma2", defaultValue: "0.9", valid: "0 ≤ float ≤ 1", meaning: "rmsprop: momentum factor",
              apply: { $0.gamma2 = try real("gamma2", $1, { (0...1).contains($0) }, "a number from 0 to 1") }, render: { format($0.gamma2) }),
        .init(key: "learning_rate", defaultValue: "0.001", valid: "0 < float ≤ 1", meaning: "initial learning rate",
              apply: { $0.learningRate = try real("learning_rate", $1, { $0 > 0 && $0 <= 1 }, "a number in (0, 1]") },
              render: { format($0.learningRate) }),
        .init(key: "lr_scheduler", defaultValue: "poly", valid: "poly, cosine, step", meaning: "learning-rate schedule",
              apply: { $0.lrScheduler = try choice("lr_scheduler", $1, LearningRateScheduler.self) }, render: { $0.lrScheduler.rawValue }),
        .init(key: "lr_scheduler_factor", defaultValue: "0.1", valid: "0 ≤ float ≤ 1", meaning: "step: multiply the LR by this at each step epoch",
              apply: { $0.lrSchedulerFactor = try real("lr_scheduler_factor", $1, { (0...1).contains($0) }, "a number from 0 to 1") },
              render: { format($0.lrSchedulerFactor) }),
        .init(key: "lr_scheduler_step", defaultValue: nil, valid: "comma-separated epochs, e.g. \"10, 20\" (required with lr_scheduler=step)",
              meaning: "step: epochs after which the LR drops",
              apply: { configuration, text in
                  let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                  let epochs = parts.compactMap { Int($0) }
                  guard !parts.isEmpty, epochs.count == parts.count, epochs.allSatisfy({ $0 > 0 }), epochs == epochs.sorted() else {
                      throw ConfigurationError.invalid(key: "lr_scheduler_step", value: text,
                                                       expected: "increasing positive epochs separated by commas, e.g. \"10, 20\"")
                  }
                  configuration.lrSchedulerStep = epochs
              },
              render: { $0.lrSchedulerStep.map { $0.map(String.init).joined(separator: ", ") } }),
        .init(key: "mini_batch_size", defaultValue: "16", valid: "int > 0", meaning: "training batch",
              apply: { $0.miniBatchSize = try integer("mini_batch_size", $1, 1...Int.max, "an integer > 0") }, render: { "\($0.miniBatchSize)" }),
        .init(key: "momentum", defaultValue: "0.9", valid: "0 < float ≤ 1", meaning: "sgd and nag",
              apply: { $0.momentum = try real("momentum", $1, { $0 > 0 && $0 <= 1 }, "a number in (0, 1]") }, render: { format($0.momentum) }),
        .init(key: "optimizer", defaultValue: "sgd", valid: "adam, adagrad, nag, rmsprop, sgd", meaning: "optimizer",
              apply: { $0.optimizer = try choice("optimizer", $1, OptimizerKind.self) }, render: { $0.optimizer.rawValue }),
        .init(key: "syncbn", defaultValue: "False", valid: "bool", meaning: "BN statistics over all workers' samples",
              apply: { $0.syncBN = try boolean("syncbn", $1) }, render: { $0.syncBN ? "True" : "False" }),
        .init(key: "validation_mini_batch_size", defaultValue: "16", valid: "int > 0",
              meaning: "1 = score whole images; > 1 = center crops",
              apply: { $0.validationMiniBatchSize = try integer("validation_mini_batch_size", $1, 1...Int.max, "an integer > 0") },
              render: { "\($0.validationMiniBatchSize)" }),
        .init(key: "weight_decay", defaultValue: "0.0001", valid: "0 < float < 1", meaning: "sgd and nag",
              apply: { $0.weightDecay = try real("weight_decay", $1, { $0 > 0 && $0 < 1 }, "a number in (0, 1)") },
              render: { format($0.weightDecay) }),
        .init(key: "_aux_weight", defaultValue: "0.5", valid: "0 ≤ float", meaning: "weight of the aux loss (internal)",
              apply: { $0.auxiliaryWeight = try real("_aux_weight", $1, { $0 >= 0 }, "a number ≥ 0") }, render: { format($0.auxiliaryWeight) }),
        .init(key: "_seed", defaultValue: "0", valid: "int ≥ 0", meaning: "random seed (internal)",
              apply: { $0.seed = UInt64(try integer("_seed", $1, 0...Int.max, "an integer ≥ 0")) }, render: { "\($0.seed)" }),
        .init(key: "_logging_frequency", defaultValue: "10", valid: "int > 0", meaning: "iterations between progress lines (internal)",
              apply: { $0.loggingFrequency = try integer("_logging_frequency", $1, 1...Int.max, "an integer > 0") },
              render: { "\($0.loggingFrequency)" }),
    ]

    static func specification(_ key: String) -> Specification? {
        specifications.first { $0.key == key }
    }

    /// Parses hyperparameters given as SageMaker's all-string values or native
    /// JSON values. Returns the configuration and notes for the log (e.g. the
    /// crop-size rounding).
    public static func parse(_ values: [String: String]) throws -> (TrainingConfiguration, notes: [String]) {
        var configuration = defaults
        for key in values.keys.sorted() {
            guard let specification = specification(key) else {
                throw ConfigurationError.unknownKey(key, suggestion: closestKey(to: key))
            }
            try specification.apply(&configuration, values[key]!)
        }
        for required in ["num_classes", "num_training_samples"] where values[required] == nil {
            throw ConfigurationError.missing(required)
        }
        let notes = configuration.roundCropSize()
        try configuration.validate()
        return (configuration, notes)
    }

    /// Parses a hyperparameters.json object (string, number or boolean values).
    public static func parse(json data: Data, file: String) throws -> (TrainingConfiguration, notes: [String]) {
        try parse(values(json: data, file: file))
    }

    /// The raw values of a hyperparameters.json object (string, number or
    /// boolean values), unparsed.
    public static func values(json data: Data, file: String) throws -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            throw ConfigurationError.malformedFile(file, reason: "not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw ConfigurationError.malformedFile(file, reason: "expected a JSON object of hyperparameters")
        }
        var values: [String: String] = [:]
        for (key, value) in dictionary {
            switch value {
            case let text as String: values[key] = text
            case let number as NSNumber:
                // JSON true/false arrive as NSNumber with ObjC type "c" (BOOL).
                if String(cString: number.objCType) == "c" {
                    values[key] = number.boolValue ? "True" : "False"
                } else {
                    values[key] = number.stringValue
                }
            default:
                throw ConfigurationError.invalid(key: key, value: "\(value)", expected: "a string, number or boolean")
            }
        }
        return values
    }

    /// The one way a training run's hyperparameters are put together, in
    /// increasing precedence: `base` (a recipe, such as the demo's), the
    /// hyperparameters.json `file` (`segment train --hyperparameters`, or the
    /// container's /opt/ml/input/config/hyperparameters.json), then
    /// `overrides` (`--set key=value`). The values are parsed once, together,
    /// so the notes (such as the crop_size rounding) describe what the user
    /// wrote, and the result is validated.
    public static func load(base: [String: String] = [:], file: URL? = nil, overrides: [String] = [])
        throws -> (TrainingConfiguration, notes: [String])
    {
        var values = base
        if let file {
            let data: Data
            do {
                data = try Data(contentsOf: file)
            } catch {
                throw ConfigurationError.malformedFile(file.path, reason: "cannot read it (\(error.localizedDescription))")
            }
            values.merge(try Self.values(json: data, file: file.path)) { $1 }
        }
        values.merge(try parseOverrides(overrides)) { $1 }
        return try parse(values)
    }

    /// `key=value` strings (`--set`) as a dictionary; unknown keys are errors
    /// with a suggestion.
    public static func parseOverrides(_ overrides: [String]) throws -> [String: String] {
        var values: [String: String] = [:]
        for override in overrides {
            guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
                throw ConfigurationError.malformedOverride(override)
            }
            let key = String(override[..<equals])
            guard specification(key) != nil else { throw ConfigurationError.unknownKey(key, suggestion: closestKey(to: key)) }
            values[key] = String(override[override.index(after: equals)...])
        }
        return values
    }

    /// Rounds crop_size up to a multiple of 8 (the output stride); the note says so.
    mutating func roundCropSize() -> [String] {
        guard cropSize % 8 != 0 else { return [] }
        let rounded = (cropSize + 7) / 8 * 8
        defer { cropSize = rounded }
        return ["crop_size \(cropSize) rounded up to \(rounded), a multiple of 8 (the output stride)"]
    }

    /// Throws, naming the key, for any value outside the table's valid range
    /// (each value is checked by the same parser as user input) and for the
    /// rules between keys. The loader calls it; so does the trainer, for
    /// configurations a Swift program built by hand.
    public func validate() throws {
        for specification in Self.specifications {
            guard let text = specification.render(self) else { continue }
            var copy = self
            try specification.apply(&copy, text)
        }
        if cropSize % 8 != 0 {
            throw ConfigurationError.invalid(key: "crop_size", value: "\(cropSize)", expected: "a multiple of 8 (the output stride)")
        }
        if lrScheduler == .step && lrSchedulerStep == nil {
            throw ConfigurationError.invalid(key: "lr_scheduler_step", value: "",
                                             expected: "epochs such as \"10, 20\" (required when lr_scheduler=step)")
        }
    }

    /// This configuration with `key: value` overrides applied (parsed and
    /// validated like user input).
    public func overriding(_ overrides: [String: String]) throws -> (TrainingConfiguration, notes: [String]) {
        for key in overrides.keys where Self.specification(key) == nil {
            throw ConfigurationError.unknownKey(key, suggestion: Self.closestKey(to: key))
        }
        return try Self.parse(hyperparameters.merging(overrides) { $1 })
    }

    /// The resolved hyperparameters in SageMaker's string form (hyperparams.json).
    public var hyperparameters: [String: String] {
        var result: [String: String] = [:]
        for specification in Self.specifications {
            if let value = specification.render(self) { result[specification.key] = value }
        }
        return result
    }

    /// The valid key closest to `key` by edit distance, if it is close enough to be a typo.
    static func closestKey(to key: String) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var current = [i + 1] + Array(repeating: 0, count: b.count)
                for (j, cb) in b.enumerated() {
                    current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
                }
                previous = current
            }
            return previous[b.count]
        }
        let lowered = Array(key.lowercased())
        let best = specifications.map { ($0.key, distance(lowered, Array($0.key))) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }
}
