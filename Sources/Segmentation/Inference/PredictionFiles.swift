import Foundation

/// Writes predictions to files as `segment predict` does (SPEC §8), one set
/// per input named after its base name: `NAME.png` (class-id mask) or
/// `NAME.rec` (the recordio-protobuf answer), and `NAME_overlay.png` when
/// `overlay` is set. Every file is written atomically.
public struct PredictionFiles: Sendable {
    public var directory: URL
    public var format: PredictionFormat
    public var overlay: Bool
    /// Legend names for the overlay, index = class id.
    public var classNames: [String]

    public init(directory: URL, format: PredictionFormat = .png, overlay: Bool = false, classNames: [String] = []) {
        self.directory = directory
        self.format = format
        self.overlay = overlay
        self.classNames = classNames
    }

    /// The base name used for an input file: its name without the extension.
    public static func baseName(of input: URL) -> String { input.deletingPathExtension().lastPathComponent }

    /// The files `write` makes for `name`.
    public func outputs(forName name: String) -> [URL] {
        var urls = [directory.appendingPathComponent("\(name).\(format.fileExtension)")]
        if overlay { urls.append(directory.appendingPathComponent("\(name)_overlay.png")) }
        return urls
    }

    /// Writes the answer (and the overlay) for `prediction` of `image`;
    /// returns the files written.
    @discardableResult
    public func write(_ prediction: Prediction, of image: RGBImage, name: String) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let urls = outputs(forName: name)
        // The argmax runs at most once, shared by the mask PNG and the overlay.
        var mask: ClassMask?
        if format == .png {
            mask = prediction.mask
            try writeAtomically(ImageCodec.encodePNG(mask: mask!), to: urls[0])
        } else {
            try writeAtomically(format.encode(prediction), to: urls[0])
        }
        if overlay {
            let picture = Overlay.render(image: image, mask: mask ?? prediction.mask, classNames: classNames)
            try writeAtomically(ImageCodec.encodePNG(rgb: picture), to: urls[1])
        }
        return urls
    }

    /// Checks a list of inputs before any work: two inputs whose outputs
    /// would have one name (`x.jpg` and `x.png`; or `a.jpg` and
    /// `a_overlay.jpg` with overlays), or an output that would overwrite an
    /// input, are errors naming them.
    public func checkInputs(_ inputs: [URL]) throws {
        var writer: [String: URL] = [:]  // output path → the input writing it
        let inputPaths = Set(inputs.map { $0.standardizedFileURL.path })
        for input in inputs {
            for output in outputs(forName: Self.baseName(of: input)) {
                let path = output.standardizedFileURL.path
                if let other = writer[path] {
                    throw PredictionError.duplicateName(name: output.lastPathComponent, first: other.path, second: input.path)
                }
                writer[path] = input
                if inputPaths.contains(path) { throw PredictionError.wouldOverwriteInput(output.path) }
            }
        }
    }
}

public enum PredictionError: Error, CustomStringConvertible, Equatable {
    case duplicateName(name: String, first: String, second: String)
    case wouldOverwriteInput(String)
    /// `width`×`height` is above `maximumPixels`; an inference would need about `neededBytes`.
    case tooLargeForMemory(file: String, width: Int, height: Int, maximumPixels: Int, neededBytes: Int, physicalMemory: Int)

    public var description: String {
        switch self {
        case let .tooLargeForMemory(file, width, height, maximumPixels, needed, physical):
            let megapixels = { (pixels: Int) in
                pixels >= 100_000 ? String(format: "%.1f MP", Double(pixels) / 1e6) : "\(pixels) pixels"
            }
            return "\(file): \(width)×\(height) (\(megapixels(width * height))) is above the limit of "
                + "\(megapixels(maximumPixels)) (--max-pixels); segmenting it needs about \(InferenceMemory.gigabytes(needed)) "
                + "of memory and this machine has \(InferenceMemory.gigabytes(physical)): scale the image down first"
        case let .duplicateName(name, first, second):
            return "\(first) and \(second) would both write \(name): predict them into different --output directories"
        case .wouldOverwriteInput(let path):
            return "writing \(path) would overwrite an input image: choose another --output directory"
        }
    }
}
