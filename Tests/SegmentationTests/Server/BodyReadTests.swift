import Foundation
import NIOCore
@testable import Segmentation
@testable import SegmentationServer
import Testing

/// 413 means too large, nothing else (issue 15, defect 4): a body that fails
/// to arrive for another reason is a 400.
@Suite struct BodyReadTests {
    struct ConnectionReset: Error, CustomStringConvertible {
        var description: String { "connection reset by peer" }
    }

    /// Chunks of a request body, then optionally a failure.
    struct Body: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let chunks: [Int]
        let failure: (any Error & Sendable)?

        struct AsyncIterator: AsyncIteratorProtocol {
            var chunks: [Int]
            let failure: (any Error & Sendable)?
            mutating func next() async throws -> ByteBuffer? {
                if !chunks.isEmpty { return ByteBuffer(repeating: 7, count: chunks.removeFirst()) }
                if let failure { throw failure }
                return nil
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks, failure: failure) }
    }

    let server = InferenceServer(predictor: ServerTests.predictor, configuration: .init(maximumPayloadBytes: 1000))

    @Test func aBodyWithinTheLimitIsRead() async throws {
        let body = try await server.readBody(Body(chunks: [400, 600], failure: nil)).get()
        #expect(body.count == 1000 && body.allSatisfy { $0 == 7 })
    }

    @Test func aBodyAboveTheLimitIs413() async {
        guard case .failure(let refusal) = await server.readBody(Body(chunks: [600, 600], failure: nil)) else {
            Issue.record("read a body above the limit")
            return
        }
        #expect(refusal.reply.status == .contentTooLarge)
    }

    @Test func aBodyThatFailsToArriveIs400NotTooLarge() async {
        guard case .failure(let refusal) = await server.readBody(Body(chunks: [10], failure: ConnectionReset())) else {
            Issue.record("a failed read succeeded")
            return
        }
        #expect(refusal.reply.status == .badRequest)
        #expect(String(decoding: refusal.reply.body, as: UTF8.self).contains("connection reset by peer"))
    }
}
