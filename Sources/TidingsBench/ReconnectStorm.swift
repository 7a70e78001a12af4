import Foundation
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization
import TidingsServer
import TidingsStore

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

        func receive(_ text: String) {
            if text.hasPrefix(#"{"type":"caught_up""#) {
                state.withLock { $0.caughtUp = true }
                return
            }
            guard text.hasPrefix(#"{"type":"event""#), let range = text.range(of: #""stream_seq":"#) else { return }
            let digits = text[range.upperBound...].prefix { $0.isNumber }
            let position = Int64(digits) ?? -1
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
            throw BenchError("the open-file limit \(limit) is too low for \(clients) clients")
        }
        let server = try ServerProcess(binary: binary, directory: directory, arguments: ["--sync", "normal"])
        defer { server.stop() }
        // Fill the store from this process (stores may be shared): one event per user, then the
        // events each user missed.
        var random = SeededGenerator(seed: 8)
        let behind = (0..<clients).map { _ in 1 + Int(random.next() % UInt64(behindMax)) }
        var options = StoreOptions()
        options.durability = .normal
        let store = try await Store.open(directory: directory, options: options)
        var batch: [NewEvent] = []
        func flush() async throws {
            if !batch.isEmpty { _ = try await store.append(batch) }
            batch.removeAll(keepingCapacity: true)
        }
        for user in 0..<clients {
            batch.append(NewEvent(type: .created, userID: "s\(user)", data: #"{"notification_id":"seen"}"#))
            if batch.count == 1_000 { try await flush() }
        }
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
        let cursors = (0..<clients).map { store.userCursor("s\($0)", streamSeq: 1) }
        store.close()
        progress("storm: \(clients) clients, \(total) events missed in all")

        let states = behind.map { Client(expected: $0) }
        let url = "ws://127.0.0.1:\(server.port)/v1/stream"
        let logger: Logger = {
            var logger = Logger(label: "storm")
            logger.logLevel = .critical
            return logger
        }()
        let started = ContinuousClock.now
        for index in 0..<clients {
            let hello =
                #"{"type":"hello","token":"\#(server.token(role: .user, subject: "s" + String(index)))","cursor":"\#(cursors[index])"}"#
            let client = states[index]
            Task {
                _ = try? await WebSocketClient.connect(
                    url: url, configuration: .init(maxFrameSize: 1 << 20), logger: logger
                ) {
                    inbound, outbound, _ in
                    try await outbound.write(.text(hello))
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message { client.receive(text) }
                        if client.done {
                            try await outbound.close(.normalClosure, reason: nil)
                            return
                        }
                    }
                }
            }
        }
        let deadline = started + .seconds(600)
        while ContinuousClock.now < deadline {
            if states.allSatisfy(\.done) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = (ContinuousClock.now - started).seconds
        let incomplete = states.filter { !$0.correct }.count
        guard incomplete == 0 else { throw BenchError("\(incomplete) clients missed or repeated events") }
        return seconds
    }
}
