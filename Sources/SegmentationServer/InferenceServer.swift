import Foundation
import Hummingbird
import Logging
import NIOCore
import Segmentation

/// SageMaker's hosting contract for the semantic-segmentation algorithm
/// (SPEC §8) on Hummingbird: `GET /ping` and `POST /invocations`.
///
/// Network evaluations run on a fixed number of workers (`workers`), off the
/// server's event loops; requests beyond them wait in a first-in, first-out
/// queue and are all answered. `/ping` never waits behind inference.
public struct InferenceServer: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// Request bodies above this are refused with 413.
        public var maximumPayloadBytes: Int
        /// Network evaluations at once. One evaluation already uses every
        /// core, so more than 1 adds memory, not throughput.
        public var workers: Int
        /// Decoded images above this many pixels are refused with 413 before
        /// the network runs: a small JPEG can hold a huge image, and a
        /// ResNet-50 evaluation needs about 0.45 GB of memory per megapixel
        /// (`InferenceMemory`).
        public var maximumPixels: Int

        /// The largest image `workers` evaluations at once can take in this
        /// machine's memory (`InferenceMemory.maximumPixels`): about 40
        /// megapixels with one worker on 24 GiB.
        public static func defaultMaximumPixels(workers: Int) -> Int {
            InferenceMemory.maximumPixels(evaluations: workers)
        }

        /// `maximumPixels` nil: `defaultMaximumPixels(workers:)`.
        public init(host: String = "0.0.0.0", port: Int = 8080, maximumPayloadBytes: Int = 10 << 20, workers: Int = 1,
                    maximumPixels: Int? = nil) {
            self.host = host
            self.port = port
            self.maximumPayloadBytes = maximumPayloadBytes
            self.workers = workers
            self.maximumPixels = maximumPixels ?? Self.defaultMaximumPixels(workers: workers)
        }

        /// Applies SageMaker's `SAGEMAKER_BIND_TO_PORT` and
        /// `SAGEMAKER_MAX_PAYLOAD_IN_MB` (MiB) when set; bad values are errors
        /// naming the variable.
        public func applyingEnvironment(_ environment: [String: String]) throws -> Configuration {
            var result = self
            if let text = environment["SAGEMAKER_BIND_TO_PORT"] {
                guard let port = Int(text), (1...65535).contains(port) else {
                    throw ServerError.badEnvironment(name: "SAGEMAKER_BIND_TO_PORT", value: text, expected: "a port number 1-65535")
                }
                result.port = port
            }
            if let text = environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] {
                guard let megabytes = Int(text), megabytes > 0, megabytes <= 4096 else {
                    throw ServerError.badEnvironment(name: "SAGEMAKER_MAX_PAYLOAD_IN_MB", value: text, expected: "an integer 1-4096")
                }
                result.maximumPayloadBytes = megabytes << 20
            }
            return result
        }
    }

    /// One `/invocations` answer.
    public struct Reply: Sendable {
        public var status: HTTPResponse.Status
        public var contentType: String
        public var body: Data
    }

    public let predictor: Predictor
    public let configuration: Configuration
    let queue: WorkQueue

    public init(predictor: Predictor, configuration: Configuration = Configuration()) {
        self.predictor = predictor
        self.configuration = configuration
        queue = WorkQueue(workers: configuration.workers)
    }

    /// Answers one invocation: checks the content type (415), the accept
    /// header (406) and the size (413), decodes the image (400; 413 above
    /// `maximumPixels`), checks that a recordio answer fits in one record
    /// (400, before the network runs), runs the network and encodes the answer.
    public func invoke(contentType: String?, accept: String?, body: Data) async -> Reply {
        func error(_ status: HTTPResponse.Status, _ message: String) -> Reply {
            Reply(status: status, contentType: "text/plain; charset=utf-8", body: Data((message + "\n").utf8))
        }
        let type = contentType.map(mediaType) ?? ""
        guard PredictionFormat.acceptedImageTypes.contains(type) else {
            return error(.unsupportedMediaType,
                         "unsupported Content-Type '\(contentType ?? "")': send image/jpeg, image/png or application/x-image")
        }
        guard let format = PredictionFormat(accept: accept) else {
            return error(.notAcceptable,
                         "unsupported Accept '\(accept ?? "")': ask for image/png or \(ProbabilityRecord.contentType) (alias \(ProbabilityRecord.contentTypeAlias))")
        }
        guard body.count <= configuration.maximumPayloadBytes else { return tooLarge(body.count) }
        let (predictor, maximumPixels) = (self.predictor, configuration.maximumPixels)
        let result: Result<Data, any Error> = await queue.run {
            Result {
                let image = try ImageCodec.decodeImage(body, file: "request body", maximumPixels: maximumPixels)
                if format == .recordIOProtobuf {
                    try ProbabilityRecord.checkFits(classes: predictor.classCount, width: image.width, height: image.height)
                }
                return try format.encode(predictor.predict(image))
            }
        }
        switch result {
        case .success(let data): return Reply(status: .ok, contentType: format.rawValue, body: data)
        case .failure(let failure as ImageError):
            if case let .tooLarge(_, width, height, limit) = failure {
                return error(.contentTooLarge, "the image is \(width)×\(height) = \(width * height) pixels, above this server's limit of \(limit) (segment serve --max-pixels)")
            }
            return error(.badRequest, "cannot decode the image: \(failure)")
        case .failure(let failure as RecordIOError): return error(.badRequest, "\(failure)")
        case .failure(let failure): return error(.internalServerError, "\(failure)")
        }
    }

    /// Why a request body was not read: the reply to send.
    struct BodyRefusal: Error {
        let reply: Reply
    }

    /// Reads a whole request body, up to `maximumPayloadBytes`. A body above
    /// the limit gets 413; any other failure to read it (the client went
    /// away, a broken chunked encoding) gets 400, because the payload was
    /// not too large, just unreadable.
    func readBody<Body: AsyncSequence>(_ body: Body) async -> Result<Data, BodyRefusal> where Body.Element == ByteBuffer {
        do {
            let buffer = try await body.collect(upTo: configuration.maximumPayloadBytes)
            return .success(Data(buffer.readableBytesView))
        } catch is NIOTooManyBytesError {
            return .failure(BodyRefusal(reply: tooLarge(nil)))
        } catch {
            return .failure(BodyRefusal(reply: Reply(
                status: .badRequest, contentType: "text/plain; charset=utf-8",
                body: Data("cannot read the request body: \(error)\n".utf8))))
        }
    }

    func tooLarge(_ bytes: Int?) -> Reply {
        let limit = configuration.maximumPayloadBytes
        let size = bytes.map { "\($0) bytes" } ?? "more"
        return Reply(status: .contentTooLarge, contentType: "text/plain; charset=utf-8",
                     body: Data("payload of \(size) is above the limit of \(limit) bytes (\(limit >> 20) MiB; set SAGEMAKER_MAX_PAYLOAD_IN_MB to change it)\n".utf8))
    }

    /// The Hummingbird router: `GET /ping`, `POST /invocations`.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("ping") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.post("invocations") { request, _ -> Response in
            let reply: Reply
            let declared = request.headers[.contentLength].flatMap { Int($0) }
            if let declared, declared > configuration.maximumPayloadBytes {
                reply = tooLarge(declared)
            } else {
                switch await readBody(request.body) {
                case .success(let body):
                    reply = await invoke(contentType: request.headers[.contentType], accept: request.headers[.accept], body: body)
                case .failure(let refusal):
                    reply = refusal.reply
                }
            }
            return Response(status: reply.status, headers: [.contentType: reply.contentType],
                            body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
        }
        return router
    }

    /// Serves until the task is cancelled (or SIGTERM/SIGINT with
    /// `handleSignals`). `onRunning` receives the bound port (useful with
    /// port 0, which asks the system for a free one).
    public func run(handleSignals: Bool = false, logger: Logger = Logger(label: "segment.serve"),
                    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "segment"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        if handleSignals {
            try await app.runService()
        } else {
            try await app.run()
        }
    }
}

public enum ServerError: Error, CustomStringConvertible, Equatable {
    case badEnvironment(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .badEnvironment(name, value, expected): return "\(name)='\(value)': expected \(expected)"
        }
    }
}
