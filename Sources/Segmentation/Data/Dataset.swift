import Foundation

/// One image and its annotation. `name` is the shared base name (`x` for
/// `train/x.jpg` + `train_annotation/x.png`).
public struct SegmentationSample: Sendable, Equatable {
    public var image: URL
    public var annotation: URL
    public var name: String

    public init(image: URL, annotation: URL, name: String) {
        self.image = image
        self.annotation = annotation
        self.name = name
    }
}

/// The two SageMaker channels (SPEC §2) and the directories they live in.
public enum DatasetSplit: String, Sendable, CaseIterable {
    case train
    case validation

    /// `train` / `validation`.
    public var imageDirectory: String { rawValue }
    /// `train_annotation` / `validation_annotation`.
    public var annotationDirectory: String { rawValue + "_annotation" }
    /// `label_map/train_label_map.json` / `label_map/validation_label_map.json`.
    public var labelMapPath: String { "label_map/\(rawValue)_label_map.json" }
}

/// What is in one channel's two directories, before deciding whether it is
/// usable: the pairs, and the files that did not pair.
public struct ChannelListing: Sendable, Equatable {
    public var samples: [SegmentationSample]
    /// Base names of images without an annotation, sorted.
    public var imagesWithoutAnnotation: [String]
    /// Base names of annotations without an image, sorted.
    public var annotationsWithoutImage: [String]
    /// Files skipped for their extension (not .jpg/.jpeg/.png, not .png for annotations).
    public var ignoredFiles: [String]

    /// Lists `imageDirectory` and `annotationDirectory` and pairs them by base
    /// name; hidden files and subdirectories are skipped.
    public static func scan(imageDirectory: URL, annotationDirectory: URL) throws -> ChannelListing {
        let (images, ignoredImages) = try listFiles(in: imageDirectory, extensions: ImageFiles.imageExtensions)
        let (annotations, ignoredAnnotations) = try listFiles(in: annotationDirectory, extensions: ImageFiles.annotationExtensions)
        let samples = images.keys.sorted().compactMap { name in
            annotations[name].map { SegmentationSample(image: images[name]!, annotation: $0, name: name) }
        }
        return ChannelListing(
            samples: samples,
            imagesWithoutAnnotation: images.keys.filter { annotations[$0] == nil }.sorted(),
            annotationsWithoutImage: annotations.keys.filter { images[$0] == nil }.sorted(),
            ignoredFiles: ignoredImages + ignoredAnnotations)
    }

    /// Base name → file for the files with one of `extensions` (any case);
    /// symbolic links are followed.
    private static func listFiles(in directory: URL, extensions: Set<String>) throws
        -> (files: [String: URL], ignored: [String])
    {
        let urls: [URL]
        do {
            urls = try ImageFiles.files(in: directory)
        } catch {
            throw DatasetError.missingChannelDirectory(
                directory: directory.path, dataDirectory: directory.deletingLastPathComponent().path)
        }
        var files: [String: URL] = [:]
        var ignored: [String] = []
        var duplicates: Set<String> = []
        for url in urls {
            guard ImageFiles.hasExtension(url, in: extensions) else {
                ignored.append(url.path)
                continue
            }
            let name = url.deletingPathExtension().lastPathComponent
            if let other = files[name] {
                duplicates.formUnion([other.lastPathComponent, url.lastPathComponent])
            }
            files[name] = url
        }
        if !duplicates.isEmpty {
            throw DatasetError.duplicateBaseName(directory: directory.path, names: duplicates.sorted())
        }
        return (files, ignored)
    }
}

/// One channel of a dataset: image/annotation pairs sorted by name, and the
/// label map that turns annotation values into class ids.
public struct ChannelDataset: Sendable {
    /// "train", "validation", or the manifest's file name.
    public var name: String
    public var samples: [SegmentationSample]
    public var labelMap: LabelMap

    public var count: Int { samples.count }

    public init(name: String, samples: [SegmentationSample], labelMap: LabelMap = .identity) {
        self.name = name
        self.samples = samples
        self.labelMap = labelMap
    }

    /// The `split` channel of the SageMaker layout under `dataDirectory`
    /// (`train/` + `train_annotation/`, label map from
    /// `label_map/train_label_map.json` when it exists). Throws when a
    /// directory is missing, a file does not pair, or the channel is empty.
    public init(dataDirectory: URL, split: DatasetSplit) throws {
        let imageDirectory = dataDirectory.appendingPathComponent(split.imageDirectory, isDirectory: true)
        let annotationDirectory = dataDirectory.appendingPathComponent(split.annotationDirectory, isDirectory: true)
        for directory in [imageDirectory, annotationDirectory] where !ImageFiles.isDirectory(directory) {
            throw DatasetError.missingChannelDirectory(directory: directory.path, dataDirectory: dataDirectory.path)
        }
        let listing = try ChannelListing.scan(imageDirectory: imageDirectory, annotationDirectory: annotationDirectory)
        if !listing.imagesWithoutAnnotation.isEmpty || !listing.annotationsWithoutImage.isEmpty {
            throw DatasetError.unmatchedFiles(
                channel: split.rawValue, imagesWithoutAnnotation: listing.imagesWithoutAnnotation,
                annotationsWithoutImage: listing.annotationsWithoutImage)
        }
        if listing.samples.isEmpty { throw DatasetError.emptyChannel(directory: imageDirectory.path) }
        self.init(name: split.rawValue, samples: listing.samples,
                  labelMap: try Self.labelMap(dataDirectory: dataDirectory, split: split))
    }

    /// The label map file of `split` if it exists, else the identity.
    public static func labelMap(dataDirectory: URL, split: DatasetSplit) throws -> LabelMap {
        let url = dataDirectory.appendingPathComponent(split.labelMapPath)
        guard FileManager.default.fileExists(atPath: url.path) else { return .identity }
        return try LabelMap.load(contentsOf: url)
    }

    /// Decodes sample `index`: the RGB image and its class ids (row-major,
    /// width × height, 255 = ignore) after the label map, checked against
    /// `classCount`. Throws when a file is damaged, the sizes differ, or a
    /// label is out of range.
    public func loadSample(_ index: Int, classCount: Int, maximumPixels: Int = ImageCodec.defaultMaximumPixels)
        throws -> (image: RGBImage, labels: [UInt8], width: Int, height: Int)
    {
        let sample = samples[index]
        let image = try ImageCodec.decodeImage(contentsOf: sample.image, maximumPixels: maximumPixels)
        let mask = try ImageCodec.decodeAnnotation(contentsOf: sample.annotation, maximumPixels: maximumPixels)
        guard image.width == mask.width, image.height == mask.height else {
            throw DatasetError.sizeMismatch(
                image: sample.image.path, imageWidth: image.width, imageHeight: image.height,
                annotation: sample.annotation.path, annotationWidth: mask.width, annotationHeight: mask.height)
        }
        let labels = try labelMap.apply(to: mask, classCount: classCount, file: sample.annotation.path)
        return (image, labels, image.width, image.height)
    }
}
