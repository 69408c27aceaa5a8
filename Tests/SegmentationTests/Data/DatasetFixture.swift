import Foundation
@testable import Segmentation

/// A dataset written at test time into a fresh temporary directory: PNG
/// images and annotations made with ImageCodec.encodePNG, so no fixture
/// files are needed. Call `remove()` when done.
struct DatasetFixture {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// A fixture writing under an existing directory (created if needed).
    init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    func url(_ path: String) -> URL { root.appendingPathComponent(path) }

    /// An RGB PNG of `width`×`height` with a ramp, at `path` (directories created).
    @discardableResult
    func writeImage(_ path: String, width: Int = 4, height: Int = 3) throws -> URL {
        let pixels = (0..<(width * height * 3)).map { UInt8($0 % 251) }
        return try write(ImageCodec.encodePNG(rgb: RGBImage(width: width, height: height, pixels: pixels)), to: path)
    }

    /// A grayscale annotation PNG whose values are `values` (row-major).
    @discardableResult
    func writeAnnotation(_ path: String, width: Int = 4, height: Int = 3, values: [UInt8]? = nil) throws -> URL {
        let values = values ?? [UInt8](repeating: 0, count: width * height)
        return try write(ImageCodec.encodePNG(mask: ClassMask(width: width, height: height, values: values)), to: path)
    }

    @discardableResult
    func write(_ data: Data, to path: String) throws -> URL {
        let url = self.url(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url
    }

    func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }
}
