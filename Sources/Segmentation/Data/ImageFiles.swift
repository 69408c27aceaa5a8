import Foundation

/// Where image files are found: in a channel directory, in a directory given
/// on the command line, or named one by one. Symbolic links are followed
/// everywhere, for the directory itself and for its entries, because people
/// link data sets into place.
public enum ImageFiles {
    /// File extensions read as images (compared lowercased): JPEG and PNG.
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]
    /// File extensions read as annotations: PNG only (JPEG would blur the class ids).
    public static let annotationExtensions: Set<String> = ["png"]

    /// True when `url`'s extension is one of `extensions`, in any case.
    public static func hasExtension(_ url: URL, in extensions: Set<String>) -> Bool {
        extensions.contains(url.pathExtension.lowercased())
    }

    /// True when `url` names a directory, or a symbolic link to one.
    public static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The entries of `directory` that are not directories (links followed),
    /// hidden files skipped, sorted by name. Throws when `directory` cannot be listed.
    public static func files(in directory: URL) throws -> [URL] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return names.filter { !$0.hasPrefix(".") }.sorted()
            .map { directory.appendingPathComponent($0) }
            .filter { !isDirectory($0) }
    }

    /// Files as given, and the JPEG and PNG files of directories (sorted).
    /// Throws, naming the argument, for a path that does not exist or a
    /// directory with no image.
    public static func expand(_ arguments: [String]) throws -> [URL] {
        var result: [URL] = []
        for argument in arguments {
            let url = URL(fileURLWithPath: argument)
            guard FileManager.default.fileExists(atPath: argument) else { throw ImageFilesError.noSuchFile(argument) }
            guard isDirectory(url) else {
                result.append(url)
                continue
            }
            let images = try files(in: url).filter { hasExtension($0, in: imageExtensions) }
            guard !images.isEmpty else { throw ImageFilesError.noImages(directory: argument) }
            result += images
        }
        return result
    }
}

/// An image argument that names nothing usable.
public enum ImageFilesError: Error, CustomStringConvertible, Equatable {
    case noSuchFile(String)
    case noImages(directory: String)

    public var description: String {
        switch self {
        case .noSuchFile(let path): return "\(path): no such file or directory"
        case .noImages(let directory): return "\(directory): no .jpg, .jpeg or .png files"
        }
    }
}
