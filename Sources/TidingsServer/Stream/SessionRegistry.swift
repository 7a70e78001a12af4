import Foundation
import Synchronization

/// Every open stream connection: counted for `live_connections` and the limits, checked by the
/// watchdog (hello timeout, stuck writes, expired tokens), closed with 1001 on shutdown.
final class SessionRegistry: Sendable {
    private let sessions = Mutex<[ObjectIdentifier: StreamSession]>([:])
    private let streamsBySubject = Mutex<[String: Int]>([:])

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

    func add(_ session: StreamSession) {
        sessions.withLock { $0[ObjectIdentifier(session)] = session }
    }

    func remove(_ session: StreamSession) {
        _ = sessions.withLock { $0.removeValue(forKey: ObjectIdentifier(session)) }
    }

    var count: Int { sessions.withLock { $0.count } }

    private var all: [StreamSession] { sessions.withLock { Array($0.values) } }

    /// Checks every session once per `interval` until cancelled.
    func watch(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = ContinuousClock.now
            let wall = Int64(Date().timeIntervalSince1970)
            for session in all { session.check(now: now, wallSeconds: wall) }
        }
    }

    /// Closes every connection with `code` (each after what is queued before it), waiting for
    /// none.
    func closeAll(code: UInt16) {
        for session in all { session.requestClose(code: code, fault: nil) }
    }

    /// Closes every connection with 1001 and waits (bounded) for them to go.
    func shutDownAll(waitingAtMost limit: Duration) async {
        for session in all { session.shutDown() }
        let deadline = ContinuousClock.now + limit
        while count > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
