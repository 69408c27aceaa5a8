/// Errors in a dataset's layout, label map or manifest (SPEC §2). Each names
/// the file or directory and says what to fix.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    /// A channel directory is missing; `dataDirectory` is the directory given with `--data`.
    case missingChannelDirectory(directory: String, dataDirectory: String)
    /// Images without an annotation and annotations without an image (base names, sorted).
    case unmatchedFiles(channel: String, imagesWithoutAnnotation: [String], annotationsWithoutImage: [String])
    /// Two files in one channel directory share a base name (`x.jpg` and `x.png`).
    case duplicateBaseName(directory: String, names: [String])
    /// A channel with no image at all.
    case emptyChannel(directory: String)
    /// After the label map, `pixelCount` pixels of `file` carry label `value` ≥ `classCount` (and ≠ 255).
    case labelOutOfRange(file: String, value: Int, pixelCount: Int, classCount: Int)
    /// A label map file that cannot be used.
    case malformedLabelMap(file: String, reason: String)
    /// A line of an augmented manifest that cannot be used (`line` counts from 1).
    case malformedManifestLine(file: String, line: Int, reason: String)
    /// A manifest line refers to `s3://…` but no `--s3-root` was given.
    case s3PathWithoutRoot(file: String, line: Int, path: String)
    /// A manifest line refers to a file that does not exist.
    case missingFile(path: String, manifest: String, line: Int)
    /// An image and its annotation differ in size.
    case sizeMismatch(image: String, imageWidth: Int, imageHeight: Int,
                      annotation: String, annotationWidth: Int, annotationHeight: Int)
    /// `segment inspect` found problems (it has printed them).
    case inspectionFailed(problemCount: Int)

    public var description: String {
        switch self {
        case let .missingChannelDirectory(directory, dataDirectory):
            return "missing channel directory \(directory); the data directory \(dataDirectory) must hold "
                + "train/ and validation/ (images: .jpg, .jpeg or .png) and train_annotation/ and "
                + "validation_annotation/ (single-channel .png annotations with the same base names), "
                + "optionally label_map/train_label_map.json and label_map/validation_label_map.json"
        case let .unmatchedFiles(channel, images, annotations):
            var parts: [String] = []
            if !images.isEmpty {
                parts.append("\(images.count) image\(images.count == 1 ? "" : "s") without annotation: \(listed(images))")
            }
            if !annotations.isEmpty {
                parts.append("\(annotations.count) annotation\(annotations.count == 1 ? "" : "s") without image: "
                    + listed(annotations))
            }
            return "channel \(channel): " + parts.joined(separator: "; ")
                + " (an image x.jpg, x.jpeg or x.png pairs with the annotation x.png)"
        case let .duplicateBaseName(directory, names):
            return "\(directory): several files share a base name: \(listed(names)); keep one file per base name"
        case let .emptyChannel(directory):
            return "\(directory): no images (.jpg, .jpeg or .png) in the channel"
        case let .labelOutOfRange(file, value, pixelCount, classCount):
            return "\(file): \(pixelCount) pixel\(pixelCount == 1 ? "" : "s") have label \(value) (after the label map), "
                + "but num_classes is \(classCount) (labels 0…\(classCount - 1), 255 = ignore)"
        case let .malformedLabelMap(file, reason):
            return "\(file): malformed label map: \(reason); expected {\"scale\": k} or {\"map\": {\"<label>\": <value>, …}}"
        case let .malformedManifestLine(file, line, reason):
            return line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)"
        case let .s3PathWithoutRoot(file, line, path):
            return "\(file):\(line): \(path) is an S3 path; give --s3-root DIR to read it from DIR/bucket/key"
        case let .missingFile(path, manifest, line):
            return "\(manifest):\(line): no such file \(path)"
        case let .sizeMismatch(image, iw, ih, annotation, aw, ah):
            return "image \(image) is \(iw)×\(ih) but its annotation \(annotation) is \(aw)×\(ah)"
        case let .inspectionFailed(problemCount):
            return "inspect found \(problemCount) problem\(problemCount == 1 ? "" : "s")"
        }
    }

    /// The first five names, then "and N more".
    private func listed(_ names: [String]) -> String {
        let shown = names.prefix(5).joined(separator: ", ")
        return names.count > 5 ? "\(shown) and \(names.count - 5) more" : shown
    }
}
