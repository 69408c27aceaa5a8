import Foundation

/// `segment inspect` (SPEC §9): decodes every image and annotation of every
/// channel and gathers sizes, class histograms and every problem, without
/// stopping at the first one. The CLI prints the report.
public struct DatasetInspection: Sendable {
    public enum Source: Sendable {
        /// The SageMaker channel layout under a data directory.
        case dataDirectory(URL)
        /// An augmented manifest and how to read it.
        case manifest(URL, attributeNames: [String]?, s3Root: URL?, labelMap: LabelMap)
    }

    public var source: Source
    /// When set, labels ≥ classCount (other than 255) are problems.
    public var classCount: Int?
    public var maximumPixels: Int

    public init(source: Source, classCount: Int? = nil, maximumPixels: Int = ImageCodec.defaultMaximumPixels) {
        precondition(classCount.map { (1...255).contains($0) } ?? true, "classCount must be in 1…255")
        self.source = source
        self.classCount = classCount
        self.maximumPixels = maximumPixels
    }

    public func run() -> InspectionReport {
        var report = InspectionReport()
        switch source {
        case .dataDirectory(let directory):
            for split in DatasetSplit.allCases {
                let imageDirectory = directory.appendingPathComponent(split.imageDirectory, isDirectory: true)
                let annotationDirectory = directory.appendingPathComponent(split.annotationDirectory, isDirectory: true)
                var channel = InspectionReport.Channel(name: split.rawValue)
                let missing = [imageDirectory, annotationDirectory].filter { !ImageFiles.isDirectory($0) }
                if let first = missing.first {
                    channel.problems.append(DatasetError.missingChannelDirectory(
                        directory: first.path, dataDirectory: directory.path).description)
                    report.channels.append(channel)
                    continue
                }
                do {
                    channel.labelMap = try ChannelDataset.labelMap(dataDirectory: directory, split: split)
                    let listing = try ChannelListing.scan(
                        imageDirectory: imageDirectory, annotationDirectory: annotationDirectory)
                    channel.imagesWithoutAnnotation = listing.imagesWithoutAnnotation
                    channel.annotationsWithoutImage = listing.annotationsWithoutImage
                    channel.ignoredFiles = listing.ignoredFiles
                    if listing.samples.isEmpty {
                        channel.problems.append(DatasetError.emptyChannel(directory: imageDirectory.path).description)
                    }
                    inspect(listing.samples, into: &channel)
                } catch {
                    channel.problems.append(String(describing: error))
                }
                report.channels.append(channel)
            }
        case let .manifest(url, attributeNames, s3Root, labelMap):
            var channel = InspectionReport.Channel(name: url.lastPathComponent)
            channel.labelMap = labelMap
            do {
                let samples = try AugmentedManifest.read(url, attributeNames: attributeNames, s3Root: s3Root)
                if samples.isEmpty { channel.problems.append(DatasetError.emptyChannel(directory: url.path).description) }
                inspect(samples, into: &channel)
            } catch {
                channel.problems.append(String(describing: error))
            }
            report.channels.append(channel)
        }
        return report
    }

    /// Decodes each pair, recording sizes, the histogram and each bad file.
    private func inspect(_ samples: [SegmentationSample], into channel: inout InspectionReport.Channel) {
        channel.pairCount = samples.count
        for sample in samples {
            var image: RGBImage?
            var mask: ClassMask?
            do {
                image = try ImageCodec.decodeImage(contentsOf: sample.image, maximumPixels: maximumPixels)
            } catch {
                channel.badFiles.append(.init(file: sample.image.path, problem: String(describing: error)))
            }
            do {
                mask = try ImageCodec.decodeAnnotation(contentsOf: sample.annotation, maximumPixels: maximumPixels)
            } catch {
                channel.badFiles.append(.init(file: sample.annotation.path, problem: String(describing: error)))
            }
            if let image { channel.recordSize(width: image.width, height: image.height) }
            guard let mask else { continue }
            let counts = channel.labelMap.histogram(of: mask)
            for (label, count) in counts.enumerated() { channel.classHistogram[label] += count }
            if let image, image.width != mask.width || image.height != mask.height {
                let error = DatasetError.sizeMismatch(
                    image: sample.image.path, imageWidth: image.width, imageHeight: image.height,
                    annotation: sample.annotation.path, annotationWidth: mask.width, annotationHeight: mask.height)
                channel.badFiles.append(.init(file: sample.annotation.path, problem: error.description))
            }
            if let classCount, let bad = (classCount..<Int(ignoreLabel)).first(where: { counts[$0] > 0 }) {
                let error = DatasetError.labelOutOfRange(
                    file: sample.annotation.path, value: bad, pixelCount: counts[bad], classCount: classCount)
                channel.badFiles.append(.init(file: sample.annotation.path, problem: error.description))
            }
        }
    }
}

/// What `DatasetInspection.run()` found; `description` is what `segment inspect` prints.
public struct InspectionReport: Sendable, CustomStringConvertible {
    public struct BadFile: Sendable, Equatable {
        public var file: String
        public var problem: String
    }

    public struct Channel: Sendable {
        public var name: String
        public var labelMap: LabelMap = .identity
        /// Image/annotation pairs found (decoded or not).
        public var pairCount = 0
        /// Sizes of the images that decoded; nil when none did.
        public var minimumWidth: Int?
        public var maximumWidth: Int?
        public var minimumHeight: Int?
        public var maximumHeight: Int?
        /// Pixel counts per class id after the label map; index 255 = ignore.
        public var classHistogram = [Int](repeating: 0, count: 256)
        public var imagesWithoutAnnotation: [String] = []
        public var annotationsWithoutImage: [String] = []
        /// Files skipped for their extension (not a problem, listed for the user).
        public var ignoredFiles: [String] = []
        public var badFiles: [BadFile] = []
        /// Channel-level problems: a missing directory, a malformed label map or manifest, no images.
        public var problems: [String] = []

        public init(name: String) { self.name = name }

        public var problemCount: Int {
            problems.count + badFiles.count + imagesWithoutAnnotation.count + annotationsWithoutImage.count
        }

        mutating func recordSize(width: Int, height: Int) {
            minimumWidth = min(minimumWidth ?? width, width)
            maximumWidth = max(maximumWidth ?? width, width)
            minimumHeight = min(minimumHeight ?? height, height)
            maximumHeight = max(maximumHeight ?? height, height)
        }
    }

    public var channels: [Channel] = []

    public var problemCount: Int { channels.reduce(0) { $0 + $1.problemCount } }
    public var hasProblems: Bool { problemCount > 0 }

    public var description: String {
        var lines: [String] = []
        for channel in channels {
            lines.append("channel \(channel.name) (label map: \(channel.labelMap))")
            for problem in channel.problems { lines.append("  problem: \(problem)") }
            lines.append("  pairs: \(channel.pairCount)")
            if let minW = channel.minimumWidth, let maxW = channel.maximumWidth,
               let minH = channel.minimumHeight, let maxH = channel.maximumHeight {
                lines.append("  image width \(range(minW, maxW)), height \(range(minH, maxH))")
            }
            let total = channel.classHistogram.reduce(0, +)
            if total > 0 {
                lines.append("  pixels per class after the label map:")
                for (label, count) in channel.classHistogram.enumerated() where count > 0 {
                    let percent = (Double(count) * 100 / Double(total) * 10).rounded() / 10
                    let name = label == Int(ignoreLabel) ? "ignore (255)" : "\(label)"
                    lines.append("    \(name): \(count) (\(percent)%)")
                }
            }
            if !channel.imagesWithoutAnnotation.isEmpty {
                lines.append("  images without annotation (\(channel.imagesWithoutAnnotation.count)): "
                    + channel.imagesWithoutAnnotation.joined(separator: ", "))
            }
            if !channel.annotationsWithoutImage.isEmpty {
                lines.append("  annotations without image (\(channel.annotationsWithoutImage.count)): "
                    + channel.annotationsWithoutImage.joined(separator: ", "))
            }
            if !channel.ignoredFiles.isEmpty {
                lines.append("  ignored (not .jpg/.jpeg/.png images or .png annotations): "
                    + channel.ignoredFiles.joined(separator: ", "))
            }
            if !channel.badFiles.isEmpty {
                lines.append("  bad files (\(channel.badFiles.count)):")
                for bad in channel.badFiles { lines.append("    \(bad.problem)") }
            }
        }
        let pairs = channels.reduce(0) { $0 + $1.pairCount }
        lines.append(hasProblems
            ? "\(problemCount) problem\(problemCount == 1 ? "" : "s") found"
            : "OK: \(channels.count) channel\(channels.count == 1 ? "" : "s"), \(pairs) pairs, no problems")
        return lines.joined(separator: "\n")
    }

    private func range(_ low: Int, _ high: Int) -> String { low == high ? "\(low)" : "\(low)–\(high)" }
}
