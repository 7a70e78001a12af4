import Dispatch
import Synchronization

/// Carries chunks from a thread that may block (an export reading the log on a reader thread)
/// to an async consumer (the HTTP response writer), holding at most `capacity` chunks: the
/// producer waits when the consumer is slow, so memory stays bounded.
final class ByteChunkChannel: Sendable {
    static let chunkBytes = 64 * 1024

    private struct State {
        var chunks: [[UInt8]] = []
        var finished = false
        var failure: (any Error)?
        var cancelled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let space: DispatchSemaphore
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        space = DispatchSemaphore(value: capacity)
    }

    /// Called by the producer; blocks while the channel is full. False once the consumer is gone.
    func send(_ chunk: [UInt8]) -> Bool {
        space.wait()
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>?? in
            guard !state.cancelled else { return .none }
            state.chunks.append(chunk)
            defer { state.waiter = nil }
            return .some(state.waiter)
        }
        guard let waiter else {
            space.signal()
            return false
        }
        waiter?.resume()
        return true
    }

    func finish(error: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            state.failure = error
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The consumer went away: let a blocked producer go.
    func cancel() {
        state.withLock { $0.cancelled = true }
        space.signal()
    }

    /// The next chunk; nil at the end; throws the producer's error.
    func next() async throws -> [UInt8]? {
        while true {
            enum Step {
                case chunk([UInt8]), end, failure(any Error), wait
            }
            let step = state.withLock { state -> Step in
                if !state.chunks.isEmpty { return .chunk(state.chunks.removeFirst()) }
                if let failure = state.failure { return .failure(failure) }
                if state.finished { return .end }
                return .wait
            }
            switch step {
            case .chunk(let chunk):
                space.signal()
                return chunk
            case .end: return nil
            case .failure(let error): throw error
            case .wait:
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Bool in
                        if !state.chunks.isEmpty || state.finished { return true }
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }
}
