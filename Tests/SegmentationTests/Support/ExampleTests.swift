import Foundation
import Testing

/// The README's Swift example is Examples/QuickStart, a target the test build
/// compiles; this runs it and checks the README still shows the same code.
@Suite("Library example")
struct ExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func between(_ text: String, _ begin: String, _ end: String) -> String? {
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex) else { return nil }
        return String(text[start.upperBound..<stop.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func readmeShowsTheCompiledExample() throws {
        let example = try String(contentsOf: Self.root.appendingPathComponent("Examples/QuickStart/main.swift"), encoding: .utf8)
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let code = try #require(Self.between(example, "// README example begin", "// README example end"))
        let section = try #require(Self.between(readme, "## Use the library from Swift", "\n## "))
        let block = try #require(Self.between(section, "```swift", "```"))
        #expect(block == "import Foundation\nimport Segmentation\n\n" + code)
    }

    @Test func exampleTrainsOneStepAndPredicts() throws {
        let binary = SageMakerModeTests.segmentBinary.deletingLastPathComponent().appendingPathComponent("SegmentationExample")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "\(binary.path) was not built")
        let process = Process()
        process.executableURL = binary
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(text.range(of: #"trained one step: validation mIOU [0-9.]+; mask [0-9]+×[0-9]+"#, options: .regularExpression) != nil, "\(text)")
    }
}
