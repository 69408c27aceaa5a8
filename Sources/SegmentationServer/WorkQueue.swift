import Foundation
import Synchronization

/// Runs blocking work on at most `workers` threads at once, outside Swift's
/// cooperative pool (a network evaluation blocks its thread for a second or
/// more; on the cooperative pool it would starve the event loops). Each job
/// gets a thread of its own rather than one of Dispatch's global queue, whose
/// width the library's parallel loops already use. Callers beyond `workers`
/// wait, first in, first out; none is turned away.
final class WorkQueue: Sendable {
    private struct State {
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var head = 0  // index of the next waiter in `waiting`
    }

    let workers: Int
    private let state = Mutex(State())

    init(workers: Int) {
        precondition(workers >= 1, "a work queue needs at least one worker")
        self.workers = workers
    }

    /// Requests running or waiting now.
    var load: (running: Int, waiting: Int) {
        state.withLock { ($0.running, $0.waiting.count - $0.head) }
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await acquire()
        defer { release() }
        return await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                guard state.running < workers else {
                    state.waiting.append(continuation)
                    return false
                }
                state.running += 1
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    /// Hands the slot straight to the oldest waiter, if any.
    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.head < state.waiting.count else {
                state.running -= 1
                return nil
            }
            let next = state.waiting[state.head]
            state.head += 1
            if state.head > 64 && state.head * 2 > state.waiting.count {
                state.waiting.removeFirst(state.head)
                state.head = 0
            }
            return next
        }
        next?.resume()
    }
}
