import Crypto
import Foundation
import Synchronization
import Testing
import TidingsClient
import TidingsTestSupport

/// docs/CLIENTS.md's scenarios, run by the Swift client against a real `tidings serve` (the
/// binary `swift build` puts beside this test bundle); 9 and 10 put clients/testing's fault
/// proxy between them.
@Suite(.serialized) struct ScenarioTests {
    static var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("tidings").path
    }

    /// A token for the servers' secret (`ServerProcess.secret`), expiring `ttl` seconds from now.
    static func token(_ role: String, _ sub: String, ttl: Int = 3600) -> String {
        func part(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let head = part(#"{"alg":"HS256","typ":"JWT"}"#)
        let expiry = Int(Date().timeIntervalSince1970) + ttl
        let body = part(#"{"sub":"\#(sub)","role":"\#(role)","exp":\#(expiry)}"#)
        let key = SymmetricKey(data: Data(ServerProcess.secret.utf8))
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data("\(head).\(body)".utf8), using: key))
            .base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "\(head).\(body).\(signature)"
    }

    static func created(_ user: String, _ id: String) -> NewEvent {
        NewEvent(type: "notification.created", userID: user, data: ["notification_id": .string(id), "title": "T"])
    }

    static func startServer(directory: String? = nil, port: Int = 0, fresh: Bool = true) throws -> ServerProcess {
        try ServerProcess(
            binary: binary, directory: directory ?? NSTemporaryDirectory() + "tidings-swift-" + UUID().uuidString,
            port: port, arguments: ["--sync", "normal"], fresh: fresh)
    }

    /// Iterates a stream in a task of its own, keeping what it yields and the states it reports.
    final class Collector: Sendable {
        let stream: TidingsStream
        let items = Mutex<[TidingsStream.Item]>([])
        let states = Mutex<[TidingsStream.State]>([])
        let failure = Mutex<TidingsError?>(nil)

        init(_ stream: TidingsStream) {
            self.stream = stream
            stream.onState { [self] state in self.states.withLock { $0.append(state) } }
            Task { [self] in
                do {
                    for try await item in stream { self.items.withLock { $0.append(item) } }
                } catch let error as TidingsError {
                    self.failure.withLock { $0 = error }
                } catch {}
            }
        }

        var events: [Envelope] {
            items.withLock { $0 }.compactMap { if case .event(let envelope, _) = $0 { envelope } else { nil } }
        }
        var ids: [String] { events.compactMap { $0.data["notification_id"]?.stringValue } }
        var isLive: Bool { if case .live = stream.state { true } else { false } }
    }

    static func waitFor(
        _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("timed out after \(timeout) waiting for \(what)")
        throw CancellationError()
    }

    @Test func firstConnectReplaysEverythingThenGoesLive() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        let publisher = TidingsClient(url: url, token: Self.token("publisher", "backend"))
        _ = try await publisher.publish((1...5).map { Self.created("alice", "n-\($0)") })
        let collector = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice")).stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("live") { collector.isLive }
        #expect(collector.ids == ["n-1", "n-2", "n-3", "n-4", "n-5"])
        #expect(collector.states.withLock { $0 } == [.connecting, .replaying, .live(replayed: 5)])
        _ = try await publisher.publish(Self.created("alice", "n-6"))
        try await Self.waitFor("n-6") { collector.ids.count == 6 }
        try await Self.waitFor("n-6 processed") { collector.stream.cursor == collector.events[5].cursor }
        #expect(collector.stream.counts == Counts(unread: 6, unseen: 6, archived: 0))
        collector.stream.stop()
    }

    @Test func aStreamResumesAfterTheProcessedCursor() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        let alice = TidingsClient(url: url, token: Self.token("user", "alice"))
        _ = try await TidingsClient(url: url, token: Self.token("publisher", "b")).publish(
            (1...5).map { Self.created("alice", "n-\($0)") })
        let third = try await alice.userEvents(userID: "alice", limit: 3).nextCursor
        let store = FileCursorStore(URL(fileURLWithPath: server.directory + "-cursor"))
        defer { try? FileManager.default.removeItem(atPath: server.directory + "-cursor") }
        try store.save(third)
        let collector = Collector(alice.stream(cursorStore: store))
        try await Self.waitFor("live") { collector.isLive }
        #expect(collector.ids == ["n-4", "n-5"])
        #expect(try store.load() == collector.stream.cursor)
        collector.stream.stop()
        let again = Collector(alice.stream(cursorStore: store))
        try await Self.waitFor("live again") { again.isLive }
        #expect(again.ids.isEmpty)
        again.stream.stop()
    }

    @Test func theServerKilledMidStreamComesBackWithoutGapOrRepeat() async throws {
        var server = try Self.startServer()
        let (directory, port) = (server.directory, server.port)
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let url = "http://127.0.0.1:\(port)"
        let publisher = TidingsClient(url: url, token: Self.token("publisher", "b"))
        let collector = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice")).stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("live") { collector.isLive }
        for n in 0..<20 { _ = try await publisher.publish(Self.created("alice", "a-\(n)")) }
        server.kill()
        try await Self.waitFor("reconnecting") {
            if case .reconnecting = collector.stream.state { true } else { false }
        }
        server = try Self.startServer(directory: directory, port: port, fresh: false)
        for n in 0..<20 { _ = try await publisher.publish(Self.created("alice", "b-\(n)")) }
        try await Self.waitFor("all 40", timeout: .seconds(30)) { collector.ids.count >= 40 }
        #expect(collector.ids == (0..<20).map { "a-\($0)" } + (0..<20).map { "b-\($0)" })
        #expect(collector.events.map(\.streamSeq) == (1...40).map { Int64($0) })
        collector.stream.stop()
    }

    @Test func aReplacedStoreIsAResetThenLiveEvents() async throws {
        let first = try Self.startServer()
        let port = first.port
        let url = "http://127.0.0.1:\(port)"
        _ = try await TidingsClient(url: url, token: Self.token("publisher", "b")).publish(
            Self.created("alice", "old-1"))
        let collector = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice")).stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("live") { collector.isLive }
        first.stop()
        let second = try Self.startServer(port: port)
        defer { second.stop() }
        try await Self.waitFor("the reset", timeout: .seconds(30)) {
            collector.items.withLock { $0 }.contains { if case .reset = $0 { true } else { false } }
        }
        let reset = collector.items.withLock { $0 }.compactMap { item -> String? in
            if case .reset(let reason, _, let counts) = item, counts == Counts(unread: 0, unseen: 0, archived: 0) {
                return reason
            }
            return nil
        }
        #expect(reset == ["epoch_mismatch"])
        _ = try await TidingsClient(url: url, token: Self.token("publisher", "b")).publish(
            Self.created("alice", "new-1"))
        try await Self.waitFor("new-1") { collector.ids.contains("new-1") }
        #expect(collector.ids == ["old-1", "new-1"])
        collector.stream.stop()
    }

    @Test(arguments: [Duration.zero, .seconds(30)])
    func aTokenThatExpiresOnAnOpenConnectionIsRenewed(refreshBeforeExpiry: Duration) async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        let asked = Mutex(0)
        // The server allows 30 s past exp: these tokens have about two seconds left.
        let alice = TidingsClient(url: url) {
            asked.withLock { $0 += 1 }
            return Self.token("user", "alice", ttl: -28)
        }
        let publisher = TidingsClient(url: url, token: Self.token("publisher", "b"))
        let collector = Collector(
            alice.stream(cursorStore: MemoryCursorStore(), refreshBeforeExpiry: refreshBeforeExpiry))
        try await Self.waitFor("live") { collector.isLive }
        for n in 0..<12 {
            _ = try await publisher.publish(Self.created("alice", "t-\(n)"))
            try await Task.sleep(for: .milliseconds(300))
        }
        try await Self.waitFor("every event across the renewal", timeout: .seconds(15)) { collector.ids.count == 12 }
        #expect(asked.withLock { $0 } >= 2)
        #expect(collector.ids == (0..<12).map { "t-\($0)" })
        #expect(collector.failure.withLock { $0 } == nil)
        collector.stream.stop()

        let fixed = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice", ttl: -29)).stream(
                cursorStore: MemoryCursorStore()))
        try await Self.waitFor("the error", timeout: .seconds(15)) { fixed.failure.withLock { $0 } != nil }
        #expect(fixed.failure.withLock { $0 }?.code == "unauthorized")
        #expect(fixed.failure.withLock { $0 }?.closeCode == 4401)
    }

    @Test func backOffWaitsStayWithinTheirWindows() async throws {
        for attempt in 0..<12 {
            let window = Backoff.window(attempt)
            #expect(window.upperBound == min(.seconds(20), .milliseconds(500) * (1 << attempt)))
            #expect(Backoff.delay(attempt, draw: { 0 }) == .zero)
            #expect(Backoff.delay(attempt, draw: { 1 }) == window.upperBound)
        }
        let server = try Self.startServer()
        let url = "http://127.0.0.1:\(server.port)"
        let collector = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice")).stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("live") { collector.isLive }
        server.kill()
        defer { server.stop() }
        func waits() -> [(Duration, Int)] {
            collector.states.withLock { $0 }.compactMap {
                if case .reconnecting(let delay, _, let attempt) = $0 { (delay, attempt) } else { nil }
            }
        }
        try await Self.waitFor("four tries", timeout: .seconds(20)) { waits().count >= 4 }
        for (index, (delay, attempt)) in waits().prefix(4).enumerated() {
            #expect(attempt == index)
            #expect(Backoff.window(attempt).contains(delay))
        }
        collector.stream.stop()
    }

    @Test func aChangeOverTheStreamIsAckedAfterItsEvent() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        _ = try await TidingsClient(url: url, token: Self.token("publisher", "b")).publish([
            Self.created("alice", "n-1"), Self.created("alice", "n-2"),
        ])
        let collector = Collector(
            TidingsClient(url: url, token: Self.token("user", "alice")).stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("live") { collector.isLive }
        let ack = try await collector.stream.mark(StateChange(.archive, ["n-1"]))
        #expect(ack == Ack(status: "ok", counts: Counts(unread: 1, unseen: 1, archived: 1)))
        try await Self.waitFor("the event") { collector.events.last?.type == "notification.archived" }
        #expect(try await collector.stream.read(["n-2"]).counts == Counts(unread: 0, unseen: 0, archived: 1))
        #expect(try await collector.stream.read(["n-2"]).status == "noop")
        await #expect(throws: TidingsError.self) { try await collector.stream.mark(StateChange(.snooze, ["n-2"])) }
        try await Self.waitFor("the stream's error") { collector.failure.withLock { $0 } != nil }
        #expect(collector.failure.withLock { $0 }?.message == "a snooze needs until: an RFC 3339 time later than now")
    }

    @Test func twoConnectionsOfOneUserStayInStep() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)"
        _ = try await TidingsClient(url: url, token: Self.token("publisher", "b")).publish([
            Self.created("alice", "n-1"), Self.created("alice", "n-2"),
        ])
        let alice = TidingsClient(url: url, token: Self.token("user", "alice"))
        let one = Collector(alice.stream(cursorStore: MemoryCursorStore()))
        let two = Collector(alice.stream(cursorStore: MemoryCursorStore()))
        try await Self.waitFor("both live") { one.isLive && two.isLive }
        let ack = try await one.stream.mark(StateChange(.read, ["n-2"]))
        try await Self.waitFor("the read on the other") { two.events.count == 3 }
        #expect(two.events[2].type == "notification.read")
        try await Self.waitFor("the counts on the other") { two.stream.counts == ack.counts }
        let answer = try await alice.mark(userID: "alice", .all(.seen))
        #expect(answer.changed == ["n-1"])
        try await Self.waitFor("the seen_all on both") { one.events.count == 4 && two.events.count == 4 }
        try await Self.waitFor("the same counts") {
            one.stream.counts == Counts(unread: 1, unseen: 0, archived: 0) && two.stream.counts == one.stream.counts
        }
        one.stream.stop()
        two.stream.stop()
    }

    @Test func aPublisherWhoseAnswerIsLostRetriesAndGetsDuplicate() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let proxy = try FaultProxy(target: server.port, dropAnswers: 1)
        defer { proxy.stop() }
        let result = try await TidingsClient(url: proxy.url, token: Self.token("publisher", "backend")).publish(
            Self.created("alice", "n-1"))
        #expect(result.status == "duplicate")
        #expect(result.event?.data["notification_id"]?.stringValue == "n-1")
        try await Self.waitFor("the proxy's second line") { proxy.log.count == 2 }
        #expect(proxy.log == ["dropped 201", "relayed 200"])
        let admin = TidingsClient(url: "http://127.0.0.1:\(server.port)", token: Self.token("admin", "root"))
        let stats =
            try JSONSerialization.jsonObject(with: try await admin.request("GET", "/v1/stats")) as? [String: Any]
        #expect(stats?["events"] as? Int == 1)
    }

    @Test func a503IsRetriedAndA400IsNot() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let proxy = try FaultProxy(target: server.port, answer503: 2)
        defer { proxy.stop() }
        let publisher = TidingsClient(url: proxy.url, token: Self.token("publisher", "backend"))
        let results = try await publisher.publish([Self.created("alice", "n-1"), Self.created("alice", "n-2")])
        #expect(results.map(\.status) == ["appended", "appended"])
        try await Self.waitFor("the proxy's third line") { proxy.log.count == 3 }
        #expect(proxy.log == ["503", "503", "relayed 201"])
        let refused = await #expect(throws: TidingsError.self) {
            try await publisher.publish(NewEvent(type: "notification.created", userID: "alice", data: ["title": "x"]))
        }
        #expect(refused?.status == 400)
        #expect(refused?.code == "bad_request")
        #expect(refused?.message.contains("notification_id") == true)
        try await Self.waitFor("the proxy's fourth line") { proxy.log.count == 4 }
        #expect(proxy.log.last == "relayed 400")
        let noop = try await publisher.publish(
            NewEvent(type: "notification.read", userID: "alice", data: ["notification_id": "gone"]))
        #expect(noop.status == "noop")
    }

    @Test func streamsThatMayNotBeOpenedStopWithTheServersReason() async throws {
        let server = try Self.startServer()
        defer { server.stop() }
        let alice = TidingsClient(url: "http://127.0.0.1:\(server.port)", token: Self.token("user", "alice"))
        let all = Collector(alice.stream(cursorStore: MemoryCursorStore(), stream: .all))
        try await Self.waitFor("forbidden") { all.failure.withLock { $0 } != nil }
        #expect(all.failure.withLock { $0 }?.code == "forbidden")
        #expect(all.failure.withLock { $0 }?.closeCode == 4403)
        let bad = Collector(alice.stream(cursorStore: MemoryCursorStore("not-a-cursor")))
        try await Self.waitFor("invalid cursor") { bad.failure.withLock { $0 } != nil }
        #expect(bad.failure.withLock { $0 }?.code == "invalid_cursor")
        let error = await #expect(throws: TidingsError.self) { _ = try await alice.unread(userID: "bob") }
        #expect(error?.status == 403)
    }
}
