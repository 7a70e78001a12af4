import Foundation
import Synchronization
import TidingsSQLite
import TidingsServer
import TidingsStore
import TidingsTestSupport

/// A reconnect storm: `clients` clients (one user each) were all caught up at stream position 1
/// when they dropped; meanwhile each user's stream grew by 1 to `behindMax` events. All
/// reconnect at once with their cursors. Measures the time until every client has every event
/// it missed, and checks none is missing or repeated.
public struct ReconnectStorm: Sendable {
    public var clients: Int
    public var behindMax: Int
    public var binary: String
    public var directory: String
    public var progress: @Sendable (String) -> Void

    public init(
        clients: Int, behindMax: Int, binary: String, directory: String, progress: @escaping @Sendable (String) -> Void
    ) {
        self.clients = clients
        self.behindMax = behindMax
        self.binary = binary
        self.directory = directory
        self.progress = progress
    }

    final class Client: Sendable {
        let expected: Int
        let state = Mutex<(next: Int64, received: Int, caughtUp: Bool, broken: Bool)>((2, 0, false, false))
        init(expected: Int) { self.expected = expected }

        func receive(_ text: UnsafeRawBufferPointer) {
            if text.hasPrefix(#"{"type":"caught_up""#) {
                state.withLock { $0.caughtUp = true }
                return
            }
            guard text.hasPrefix(#"{"type":"event""#) else { return }
            let position = Int64(text.number(after: #""stream_seq":"#) ?? -1)
            state.withLock { state in
                if position != state.next { state.broken = true }
                state.next = position + 1
                state.received += 1
            }
        }

        var done: Bool { state.withLock { $0.caughtUp && $0.received >= expected } }
        var correct: Bool { state.withLock { !$0.broken && $0.received == expected } }
    }

    public func run() async throws -> Double {
        let limit = FileDescriptorLimit.raise()
        guard limit > clients + 1_000 else {
            throw HarnessError("the open-file limit \(limit) is too low for \(clients) clients")
        }
        let server = try ServerProcess(binary: binary, directory: directory, arguments: ["--sync", "normal"])
        defer { server.stop() }
        // Fill the store from this process (stores may be shared): one event per user, then the
        // events each user missed.
        var random = SeededGenerator(seed: 8)
        let behind = (0..<clients).map { _ in 1 + Int(random.next() % UInt64(behindMax)) }
        var options = StoreOptions()
        options.durability = .normal
        let store = try await SQLiteStore.open(directory: directory, options: options)
        var batch: [NewEvent] = []
        func flush() async throws {
            if !batch.isEmpty { _ = try await store.append(batch) }
            batch.removeAll(keepingCapacity: true)
        }
        for user in 0..<clients {
            batch.append(NewEvent(type: .created, userID: "s\(user)", data: #"{"notification_id":"seen"}"#))
            if batch.count == 1_000 { try await flush() }
        }
        try await flush()
        // Where each client's cursor was made: when it had seen its first event.
        let seen = try await store.head()
        let total = behind.reduce(0, +)
        var remaining = behind
        var round = 0
        while remaining.contains(where: { $0 > 0 }) {
            for user in 0..<clients where remaining[user] > 0 {
                batch.append(
                    NewEvent(
                        type: .created, userID: "s\(user)",
                        data: #"{"notification_id":"m\#(round)","title":"Missed while away"}"#))
                remaining[user] -= 1
                if batch.count == 1_000 { try await flush() }
            }
            round += 1
        }
        try await flush()
        let cursors = (0..<clients).map { store.userCursor("s\($0)", streamSeq: 1, anchor: seen) }
        store.close()
        progress("storm: \(clients) clients, \(total) events missed in all")

        let states = behind.map { Client(expected: $0) }
        let hellos = (0..<clients).map { index in
            #"{"type":"hello","token":"\#(server.token(role: .user, subject: "s" + String(index)))","cursor":"\#(cursors[index])"}"#
        }
        let swarm = try WebSocketSwarm(port: server.port) { index, text in states[index].receive(text) }
        defer { swarm.stop() }
        let started = ContinuousClock.now
        swarm.connect(hellos: hellos)
        let deadline = started + .seconds(600)
        while ContinuousClock.now < deadline {
            if states.allSatisfy(\.done) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = (ContinuousClock.now - started).seconds
        let incomplete = states.filter { !$0.correct }.count
        guard incomplete == 0 else { throw HarnessError("\(incomplete) clients missed or repeated events") }
        return seconds
    }
}
