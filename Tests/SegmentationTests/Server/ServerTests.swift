import Foundation
import Logging
@testable import Segmentation
@testable import SegmentationServer
import Testing

/// `segment serve` on loopback: a real server on a free port, real HTTP/1.1
/// requests over sockets, SageMaker's hosting contract (SPEC §8).
@Suite("Inference server", .serialized)
struct ServerTests {
    static let predictor = Predictor(model: PredictorTests.model)

    /// Runs `body` against a server started on a free loopback port, then stops it.
    func withServer(maximumPayloadBytes: Int = 1 << 20, workers: Int = 1, maximumPixels: Int = 1_000_000,
                    _ body: (Int) async throws -> Void) async throws {
        let server = InferenceServer(predictor: Self.predictor, configuration: .init(
            host: "127.0.0.1", port: 0, maximumPayloadBytes: maximumPayloadBytes, workers: workers, maximumPixels: maximumPixels))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var quiet = Logger(label: "test.serve")
        quiet.logLevel = .critical  // stopping the server by cancellation logs an error
        let task = Task { [quiet] in try await server.run(logger: quiet) { continuation.yield($0) } }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(port)
    }

    static func jpeg(width: Int, height: Int, seed: UInt64) throws -> (RGBImage, Data) {
        let image = PredictorTests.image(width: width, height: height, seed: seed)
        let data = try ImageCodec.encodeJPEG(rgb: image, quality: 95)
        // The server sees the decoded JPEG, not the original pixels.
        return (try ImageCodec.decodeImage(data, file: "sent.jpg"), data)
    }

    @Test func pingAndBothAnswerFormats() async throws {
        let (image, body) = try Self.jpeg(width: 33, height: 21, seed: 1)
        let expected = Self.predictor.predict(image)
        try await withServer { port in
            let ping = try await HTTP.request(port: port, method: "GET", path: "/ping")
            #expect(ping.status == 200)

            for accept in [nil, "*/*", "image/png"] as [String?] {
                var headers = ["Content-Type": "image/jpeg"]
                headers["Accept"] = accept
                let reply = try await HTTP.request(port: port, method: "POST", path: "/invocations", headers: headers, body: body)
                #expect(reply.status == 200 && reply.headers["content-type"] == "image/png")
                let mask = try ImageCodec.decodeAnnotation(reply.body, file: "reply.png")
                #expect(mask == expected.mask)
            }
            for accept in ["application/x-recordio-protobuf", "application/x-protobuf"] {
                let reply = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                   headers: ["Content-Type": "application/x-image", "Accept": accept], body: body)
                #expect(reply.status == 200 && reply.headers["content-type"] == "application/x-recordio-protobuf")
                let probabilities = try ProbabilityRecord.decode(reply.body, file: "reply.rec")
                #expect(probabilities.count == 1 && probabilities[0].shape == [1, 3, 21, 33])
                #expect(argmaxClasses(probabilities[0]) == expected.mask.values)
            }
            // A PNG sent as image/png.
            let png = try ImageCodec.encodePNG(rgb: image)
            let reply = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                               headers: ["Content-Type": "image/png"], body: png)
            #expect(try ImageCodec.decodeAnnotation(reply.body, file: "reply.png") == expected.mask)
        }
    }

    @Test func errorStatuses() async throws {
        let (_, body) = try Self.jpeg(width: 16, height: 16, seed: 2)
        let (_, bigger) = try Self.jpeg(width: 24, height: 24, seed: 3)
        try await withServer(maximumPayloadBytes: 4096, maximumPixels: 300) { port in
            let wrongType = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                   headers: ["Content-Type": "text/csv"], body: body)
            #expect(wrongType.status == 415 && String(decoding: wrongType.body, as: UTF8.self).contains("image/jpeg"))
            let noType = try await HTTP.request(port: port, method: "POST", path: "/invocations", body: body)
            #expect(noType.status == 415)
            let wrongAccept = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                     headers: ["Content-Type": "image/jpeg", "Accept": "application/json"], body: body)
            #expect(wrongAccept.status == 406)
            let garbage = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                 headers: ["Content-Type": "image/jpeg"], body: Data("not an image".utf8))
            #expect(garbage.status == 400 && String(decoding: garbage.body, as: UTF8.self).contains("decode"))
            let truncated = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                   headers: ["Content-Type": "image/jpeg"], body: body.prefix(body.count / 2))
            #expect(truncated.status == 400)
            let large = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                               headers: ["Content-Type": "image/jpeg"], body: Data(repeating: 0xFF, count: 5000))
            #expect(large.status == 413 && String(decoding: large.body, as: UTF8.self).contains("SAGEMAKER_MAX_PAYLOAD_IN_MB"))
            // The same body sent chunked, with no Content-Length to check up front.
            let chunked = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                 headers: ["Content-Type": "image/jpeg"], body: Data(repeating: 0xFF, count: 5000),
                                                 chunked: true)
            #expect(chunked.status == 413)
            // A small payload holding more pixels than the server takes (24×24 > 300).
            let manyPixels = try await HTTP.request(port: port, method: "POST", path: "/invocations",
                                                    headers: ["Content-Type": "image/jpeg"], body: bigger)
            #expect(manyPixels.status == 413 && String(decoding: manyPixels.body, as: UTF8.self).contains("--max-pixels"))
            // The server still answers after all that.
            #expect(try await HTTP.request(port: port, method: "GET", path: "/ping").status == 200)
        }
    }

    @Test func fiftyConcurrentRequestsAreAllAnsweredCorrectly() async throws {
        let inputs = try (0..<5).map { try Self.jpeg(width: 24 + $0 * 4, height: 20, seed: 100 + UInt64($0)) }
        let expected = inputs.map { Self.predictor.predict($0.0).mask }
        try await withServer { port in
            let replies = try await HTTP.concurrently(50) { index in
                try HTTP.send(port: port, method: "POST", path: "/invocations",
                              headers: ["Content-Type": "image/jpeg", "Accept": "image/png"], body: inputs[index % 5].1)
            }
            #expect(replies.count == 50)
            for (index, reply) in replies.enumerated() {
                #expect(reply.status == 200)
                #expect(try ImageCodec.decodeAnnotation(reply.body, file: "reply \(index)") == expected[index % 5])
            }
        }
    }

    /// `segment serve --sagemaker` as a real process: it loads the model from
    /// /opt/ml/model under a fake root, listens on SAGEMAKER_BIND_TO_PORT,
    /// answers, and its memory stays bounded: the resident size after 500
    /// more requests is within 64 MiB of the size after a warm-up (workspaces
    /// are reused, request buffers freed). SIGTERM stops it with status 0.
    @Test func servedProcessKeepsItsMemoryBoundedOver500Requests() async throws {
        let binary = SageMakerModeTests.segmentBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "\(binary.path) was not built; run swift test -c release")
        let fixture = try DatasetFixture()
        defer { fixture.remove() }
        let environment = SageMakerEnvironment(root: fixture.root)
        try ModelDirectory.write(PredictorTests.model, to: environment.modelDirectory, hyperparameters: [:], origin: "test")
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--sagemaker", "--sagemaker-root", fixture.root.path, "--host", "127.0.0.1"]
        process.environment = ProcessInfo.processInfo.environment.merging(["SAGEMAKER_BIND_TO_PORT": String(port)]) { $1 }
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var banner = ""
        let deadline = Date().addingTimeInterval(60)
        while !banner.contains("serving"), process.isRunning, Date() < deadline {
            banner += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        #expect(banner.contains("127.0.0.1:\(port)") && banner.contains(environment.modelDirectory.path), "\(banner)")

        let (_, body) = try Self.jpeg(width: 40, height: 32, seed: 7)
        #expect(try await HTTP.request(port: port, method: "GET", path: "/ping").status == 200)
        _ = try await HTTP.concurrently(20) { _ in
            try HTTP.send(port: port, method: "POST", path: "/invocations", headers: ["Content-Type": "image/jpeg"], body: body)
        }
        let before = residentMiB(of: process.processIdentifier)
        let replies = try await HTTP.concurrently(500, threads: 10) { _ in
            try HTTP.send(port: port, method: "POST", path: "/invocations", headers: ["Content-Type": "image/jpeg"], body: body)
        }
        let after = residentMiB(of: process.processIdentifier)
        #expect(replies.count == 500 && replies.allSatisfy { $0.status == 200 })
        print("segment serve RSS after warm-up: \(before) MiB, after 500 more requests: \(after) MiB")
        #expect(before > 0 && after - before < 64, "RSS grew from \(before) to \(after) MiB over 500 requests")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// The queue never runs more than `workers` jobs at once, reaches that
    /// many, and answers every caller.
    @Test func workQueueBoundsConcurrencyAndAnswersEveryone() async {
        final class Gauge: @unchecked Sendable {
            let lock = NSLock()
            var running = 0, highest = 0
            func enter() { lock.withLock { running += 1; highest = max(highest, running) } }
            func leave() { lock.withLock { running -= 1 } }
        }
        let gauge = Gauge()
        let queue = WorkQueue(workers: 2)
        let answers = await withTaskGroup(of: Int.self) { group in
            for index in 0..<12 {
                group.addTask {
                    await queue.run {
                        gauge.enter()
                        usleep(20_000)
                        gauge.leave()
                        return index
                    }
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(answers.sorted() == Array(0..<12))
        #expect(gauge.highest == 2)
        #expect(queue.load.running == 0 && queue.load.waiting == 0)
    }

    @Test func sageMakerEnvironmentOverridesPortAndPayload() throws {
        let base = InferenceServer.Configuration()
        #expect(base.port == 8080 && base.maximumPayloadBytes == 10 << 20 && base.workers == 1)
        // The image limit follows the memory, shared by the workers.
        #expect(base.maximumPixels == InferenceMemory.maximumPixels())
        #expect(InferenceServer.Configuration(workers: 3).maximumPixels == InferenceMemory.maximumPixels(evaluations: 3))
        let set = try base.applyingEnvironment(["SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6"])
        #expect(set.port == 9090 && set.maximumPayloadBytes == 6 << 20)
        #expect(throws: ServerError.self) { try base.applyingEnvironment(["SAGEMAKER_BIND_TO_PORT": "http"]) }
        #expect(throws: ServerError.self) { try base.applyingEnvironment(["SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"]) }
    }

    /// A port nobody listens on now (bound to 0, read back, closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HTTP.Failure(description: "could not find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func residentMiB(of pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }
}

/// A minimal HTTP/1.1 client over POSIX sockets (`Connection: close`), so the
/// tests need no HTTP client library. Blocking calls run on their own
/// threads, never on Swift's cooperative pool, which the server needs.
enum HTTP {
    struct Reply: Sendable {
        var status: Int
        var headers: [String: String]  // lower-cased names
        var body: Data
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func request(port: Int, method: String, path: String, headers: [String: String] = [:],
                        body: Data = Data(), chunked: Bool = false) async throws -> Reply {
        try await concurrently(1) { _ in
            try send(port: port, method: method, path: path, headers: headers, body: body, chunked: chunked)
        }[0]
    }

    /// Runs `count` calls of `body` on `threads` threads (default: one per call); results in call order.
    static func concurrently(_ count: Int, threads: Int? = nil,
                             _ body: @escaping @Sendable (Int) throws -> Reply) async throws -> [Reply] {
        let threadCount = min(threads ?? count, count)
        let results = Results(count: count)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for t in 0..<threadCount {
                group.enter()
                Thread {
                    for index in stride(from: t, to: count, by: threadCount) { results.set(index, Result { try body(index) }) }
                    group.leave()
                }.start()
            }
            group.notify(queue: .global()) { continuation.resume() }
        }
        return try results.all()
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Result<Reply, any Error>?]
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ index: Int, _ value: Result<Reply, any Error>) { lock.withLock { values[index] = value } }
        func all() throws -> [Reply] { try lock.withLock { try values.map { try $0!.get() } } }
    }

    /// One request; `chunked` sends the body with Transfer-Encoding: chunked
    /// (1000-byte chunks) instead of a Content-Length.
    static func send(port: Int, method: String, path: String, headers: [String: String] = [:], body: Data = Data(),
                     chunked: Bool = false) throws -> Reply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to port \(port): errno \(errno)") }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        head += chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var request = Data((head + "\r\n").utf8)
        if chunked {
            for start in stride(from: 0, to: body.count, by: 1000) {
                let piece = body[(body.startIndex + start)..<(body.startIndex + min(start + 1000, body.count))]
                request += Data((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Data("\r\n".utf8)
            }
            request += Data("0\r\n\r\n".utf8)
        } else {
            request += body
        }
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                // The server may answer (413) and close before reading everything.
                if n < 0 && (errno == EPIPE || errno == ECONNRESET) { break }
                guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
                sent += n
            }
        }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
            if let reply = parse(response), reply.body.count >= Int(reply.headers["content-length"] ?? "-1") ?? Int.max { return reply }
        }
        guard let reply = parse(response) else { throw Failure(description: "no HTTP response (\(response.count) bytes)") }
        return reply
    }

    static func parse(_ data: Data) -> Reply? {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusText = lines.first?.split(separator: " ").dropFirst().first, let status = Int(statusText) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Data(data[end.upperBound...]))
    }
}
