import Foundation
import NIOCore
import Synchronization

/// Every open stream connection: counted for `live_connections` and the limits, ticked by the
/// watchdog (hello timeout, stuck writes, expired tokens, pings, close timeouts), closed on
/// shutdown.
///
/// Connections are kept per event loop, and each loop ticks its own once per interval in one
/// scheduled task, so the watchdog costs no task or timer per connection.
final class SessionRegistry: Sendable {
    /// The connections of one event loop, touched only on it.
    private final class LoopStreams: Sendable {
        let loop: any EventLoop
        let handlers: NIOLoopBoundBox<[ObjectIdentifier: StreamChannelHandler]>
        let ticks: NIOLoopBoundBox<RepeatedTask?>
        /// Made when the loop's first connection chooses `permessage-deflate`.
        let deflate: NIOLoopBoundBox<DeflateCodec?>

        init(loop: any EventLoop) {
            self.loop = loop
            handlers = NIOLoopBoundBox([:], eventLoop: loop)
            ticks = NIOLoopBoundBox(nil, eventLoop: loop)
            deflate = NIOLoopBoundBox(nil, eventLoop: loop)
        }
    }

    private let loops = Mutex<[ObjectIdentifier: LoopStreams]>([:])
    private let open = Atomic<Int>(0)
    private let streamsBySubject = Mutex<[String: Int]>([:])
    private let tickInterval: Duration
    private let stopped = Atomic<Bool>(false)

    init(tickInterval: Duration) {
        self.tickInterval = tickInterval
    }

    /// Counts one more stream of `subject`; false, counting nothing, when it has `limit` already.
    func claimStream(subject: String, limit: Int) -> Bool {
        streamsBySubject.withLock { counts in
            let current = counts[subject] ?? 0
            guard current < limit else { return false }
            counts[subject] = current + 1
            return true
        }
    }

    func releaseStream(subject: String) {
        streamsBySubject.withLock { counts in
            let remaining = (counts[subject] ?? 1) - 1
            counts[subject] = remaining > 0 ? remaining : nil
        }
    }

    /// Called on `loop` when a connection's handler joins its pipeline.
    func add(_ handler: StreamChannelHandler, on loop: any EventLoop) {
        let streams = self.streams(of: loop)
        streams.handlers.value[ObjectIdentifier(handler)] = handler
        open.add(1, ordering: .relaxed)
        if stopped.load(ordering: .relaxed) {
            // Accepted while the server shuts down: closed at once, as the others were.
            handler.feed(.closeRequested(code: 1001))
            return
        }
        if streams.ticks.value == nil {
            let interval = TimeAmount(tickInterval)
            streams.ticks.value = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let wall = Int64(Date().timeIntervalSince1970)
                for handler in streams.handlers.value.values { handler.feed(.tick(wallSeconds: wall)) }
            }
        }
    }

    /// Called on `loop` when the connection is gone.
    func remove(_ handler: StreamChannelHandler, on loop: any EventLoop) {
        let streams = self.streams(of: loop)
        if streams.handlers.value.removeValue(forKey: ObjectIdentifier(handler)) != nil {
            open.subtract(1, ordering: .relaxed)
        }
    }

    /// The deflater and inflater the connections of `loop` share; called on `loop`.
    func deflateCodec(on loop: any EventLoop) -> DeflateCodec {
        let streams = self.streams(of: loop)
        if let codec = streams.deflate.value { return codec }
        let codec = DeflateCodec()
        streams.deflate.value = codec
        return codec
    }

    private func streams(of loop: any EventLoop) -> LoopStreams {
        loops.withLock { loops in
            let key = ObjectIdentifier(loop)
            if let streams = loops[key] { return streams }
            let streams = LoopStreams(loop: loop)
            loops[key] = streams
            return streams
        }
    }

    var count: Int { open.load(ordering: .relaxed) }

    /// Closes every connection with `code` (each after what is queued before it), on its own
    /// event loop, waiting for none.
    func closeAll(code: UInt16) {
        for streams in loops.withLock({ Array($0.values) }) {
            streams.loop.execute {
                for handler in streams.handlers.value.values { handler.feed(.closeRequested(code: code)) }
            }
        }
    }

    /// Closes every connection with 1001 and waits (bounded) for them to go; then stops the
    /// ticks and closes the channels of clients that did not answer.
    func shutDownAll(waitingAtMost limit: Duration) async {
        closeAll(code: 1001)
        let deadline = ContinuousClock.now + limit
        while count > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        stopped.store(true, ordering: .relaxed)
        for streams in loops.withLock({ Array($0.values) }) {
            streams.loop.execute {
                streams.ticks.value?.cancel()
                streams.ticks.value = nil
                for handler in streams.handlers.value.values { handler.closeChannel() }
            }
        }
    }
}
