import Foundation
import NIOHTTP1
import Testing
import TidingsStore
import TidingsTestSupport

@testable import TidingsServer

/// Every phase of an HTTP connection closes at its deadline (`HTTPDeadlines`), each tested at
/// its bound against a real server over raw sockets; and what is in use is never cut off. The
/// tests time closes to within a second, so they run one at a time (and tools/test runs them
/// after the rest of the suite).
@Suite(.serialized) struct DeadlineTests {
    /// One second for every phase: the tests look for a close between one and two seconds.
    static func server(logs: LogCapture? = nil, deadline: Duration = .seconds(1)) async throws -> ServerHarness {
        try await ServerHarness(logs: logs) {
            $0.httpDeadlines.head = deadline
            $0.httpDeadlines.body = deadline
            $0.httpDeadlines.idle = deadline
            $0.httpDeadlines.write = deadline
        }
    }

    /// A raw connection that sends `bytes`, then the first byte of `more` every 200 ms (nothing
    /// when it is empty), until the server closes it; returns the time from `since` (the connect, unless given) to the close.
    static func trickle(
        port: Int, _ bytes: String, then more: String = "X", limit: Duration = .seconds(10),
        since: ContinuousClock.Instant? = nil
    ) async throws -> Duration {
        let started = ContinuousClock.now
        let descriptor = try LoopbackSocket.connect(port: port)
        defer { close(descriptor) }
        try LoopbackSocket.writeAll(descriptor, Array(bytes.utf8))
        var lastByte = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            if Self.isClosed(descriptor) { return ContinuousClock.now - (since ?? started) }
            if !more.isEmpty && ContinuousClock.now - lastByte >= .milliseconds(200) {
                _ = Array(more.utf8).withUnsafeBytes { send(descriptor, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
                lastByte = ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return limit
    }

    /// True when the server has closed the connection (reads what it sent first, without waiting).
    static func isClosed(_ descriptor: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 { continue }
            return count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
        }
    }

    static func closes(_ server: ServerHarness) async throws -> [String: Int] {
        let metrics = try await server.request(.GET, "/metrics").text
        var counts: [String: Int] = [:]
        for line in metrics.split(separator: "\n") where line.hasPrefix("tidings_http_deadline_closes_total{") {
            let phase = line.split(separator: "\"")[1]
            counts[String(phase)] = Int(line.split(separator: " ").last ?? "")
        }
        return counts
    }

    @Test func aHeadThatTricklesIsClosedAtItsDeadlineWhateverItSends() async throws {
        let logs = LogCapture()
        let server = try await Self.server(logs: logs)
        let port = server.port
        let token = ServerHarness.auditor
        async let plain = Self.trickle(port: port, "GET /healthz HTTP/1.1\r\nX-Slow: ")
        async let withToken = Self.trickle(port: port, "GET /v1/stats HTTP/1.1\r\nAuthorization: Bearer \(token)\r\nX")
        async let upgrade = Self.trickle(
            port: port, "GET /v1/stream HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: ")
        async let silent = Self.trickle(port: port, "", then: "")
        for (name, elapsed) in try await [
            ("plain", plain), ("token", withToken), ("upgrade", upgrade), ("silent", silent),
        ] {
            #expect(elapsed >= .seconds(1) && elapsed < .seconds(2), "\(name): closed after \(elapsed)")
        }
        #expect(try await Self.closes(server)["head"] == 4)
        let lines = logs.all.filter { $0.contains("past its deadline") }
        #expect(lines.count == 4)
        #expect(
            lines.allSatisfy { $0.hasPrefix("info ") && $0.contains("phase=head") && $0.contains("peer=127.0.0.1:") })
        #expect(!logs.all.contains { $0.contains(token) }, "no log line holds the token")
        // A head that comes whole in time is answered.
        let prompt = try LimitTests.RawConnection(port: port)
        prompt.send(LimitTests.request(port))
        #expect(await prompt.readAll().hasPrefix("HTTP/1.1 200"))
        await server.stop()
    }

    /// The attack the head deadline answers: thousands of connections that each send part of a
    /// head and then a byte every half second. Every one is closed within its deadline plus a
    /// second, and meanwhile `/healthz` and appends answer.
    @Test func thousandsOfTricklingConnectionsAreAllClosedWhileTheServerAnswers() async throws {
        let count = 3_000
        FileDescriptorLimit.raise(atLeast: 3 * count)
        let server = try await Self.server(deadline: .seconds(2))
        let port = server.port
        var open: [(descriptor: Int32, since: ContinuousClock.Instant)] = []
        defer { for connection in open { close(connection.descriptor) } }
        let probes = Task {
            var answers: [Int] = []
            var slowest = Duration.zero
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    answers.append(try await server.request(.GET, "/healthz").status)
                    let reply = try await server.request(
                        .POST, "/v1/events", token: ServerHarness.publisher,
                        body: ServerHarness.created("alice", "n-\(answers.count)"))
                    answers.append(reply.status)
                } catch  where Task.isCancelled {
                    break
                }
                slowest = max(slowest, ContinuousClock.now - started)
                try? await Task.sleep(for: .milliseconds(100))
            }
            return (answers, slowest)
        }
        var closedAfter: [Duration] = []
        var closedLate: [Duration] = []
        var remaining: [Int] = []
        var lastByte = ContinuousClock.now
        let giveUp = ContinuousClock.now + .seconds(30)
        // Opened as a flood from one client is, a thousand connections a second, while the
        // ones already open trickle and are watched for their close.
        while (open.count < count || !remaining.isEmpty) && ContinuousClock.now < giveUp {
            for _ in 0..<min(20, count - open.count) {
                let descriptor = try LoopbackSocket.connect(port: port)
                remaining.append(open.count)
                open.append((descriptor, ContinuousClock.now))
                try LoopbackSocket.writeAll(
                    descriptor, Array("GET /healthz HTTP/1.1\r\nX-Trickle-\(open.count): ".utf8))
            }
            let trickle = ContinuousClock.now - lastByte >= .milliseconds(500)
            if trickle { lastByte = ContinuousClock.now }
            remaining = remaining.filter { index in
                let (descriptor, since) = open[index]
                if Self.isClosed(descriptor) {
                    let elapsed = ContinuousClock.now - since
                    closedAfter.append(elapsed)
                    if elapsed >= .seconds(3) || elapsed < .seconds(2) { closedLate.append(elapsed) }
                    return false
                }
                if trickle { _ = send(descriptor, "X", 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                return true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        probes.cancel()
        let (answers, slowest) = try await probes.value
        #expect(remaining.count == 0, "connections still open")
        #expect(closedLate.count == 0, "closed outside [2 s, 3 s), first: \(closedLate.prefix(5))")
        closedAfter.sort()
        if !closedAfter.isEmpty {
            print(
                "trickling connections: \(closedAfter.count) closed after \(closedAfter[0]) (first), "
                    + "\(closedAfter[closedAfter.count / 2]) (median), \(closedAfter[closedAfter.count - 1]) (last); "
                    + "\(answers.count) health checks and appends meanwhile, the slowest pair \(slowest)")
        }
        let closes = try await Self.closes(server)
        #expect(closes["head"] == count, "\(closes)")
        #expect(answers.count >= 10 && answers.allSatisfy { $0 == 200 || $0 == 201 }, "\(answers)")
        #expect(slowest < .seconds(1), "a health check and an append took \(slowest)")
        await server.stop()
    }

    @Test func aBodyThatStallsIsClosedAtItsDeadlineAndAppendsNothing() async throws {
        let server = try await Self.server()
        let port = server.port
        let body = ServerHarness.created("alice", "n-1")
        let head =
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ServerHarness.publisher)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        let elapsed = try await Self.trickle(port: port, head + body.prefix(10), then: " ")
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(2), "closed after \(elapsed)")
        #expect(try await Self.closes(server)["body"] == 1)
        #expect(try await server.store.headSeq() == 0)
        await server.stop()
    }

    @Test func anIdleKeptAliveConnectionIsClosedAndOneInUseIsNot() async throws {
        let server = try await Self.server()
        let port = server.port
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        let idle = try LoopbackSocket.connect(port: port)
        defer { close(idle) }
        let busy = try LoopbackSocket.connect(port: port)
        defer { close(busy) }
        try LoopbackSocket.writeAll(idle, Array(request.utf8))
        let answered = ContinuousClock.now
        var idleClosedAfter: Duration?
        var answers = 0
        // The busy connection asks every 400 ms for three seconds, three idle deadlines.
        while ContinuousClock.now - answered < .seconds(3) {
            if idleClosedAfter == nil && Self.isClosed(idle) { idleClosedAfter = ContinuousClock.now - answered }
            try LoopbackSocket.writeAll(busy, Array(request.utf8))
            var buffer = [UInt8](repeating: 0, count: 4_096)
            let read = try await Self.read(busy, into: &buffer)
            if String(decoding: buffer[0..<read], as: UTF8.self).hasPrefix("HTTP/1.1 200") { answers += 1 }
            try await Task.sleep(for: .milliseconds(400))
        }
        #expect(
            idleClosedAfter.map { $0 >= .seconds(1) && $0 < .seconds(2) } == true,
            "\(String(describing: idleClosedAfter))")
        #expect(answers >= 6)
        #expect(!Self.isClosed(busy))
        #expect(try await Self.closes(server)["idle"] == 1)
        await server.stop()
    }

    /// Waits (polling, up to five seconds) for bytes on `descriptor`.
    static func read(_ descriptor: Int32, into buffer: inout [UInt8]) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 { return count }
            if count == 0 { return 0 }
            try await Task.sleep(for: .milliseconds(5))
        }
        return 0
    }

    /// An export of about 8 MB, more than every socket buffer between the server and a client.
    static func exportServer() async throws -> ServerHarness {
        let server = try await Self.server()
        let title = String(repeating: "x", count: 400)
        for batch in 0..<16 {
            try await server.append(
                (0..<1_000).map { ServerHarness.created("u\($0 % 9)", "n-\(batch)-\($0)", title: title) })
        }
        return server
    }

    static func exportRequest(_ descriptor: Int32) throws {
        LoopbackSocket.setReceiveBuffer(descriptor, bytes: 256 * 1024)
        let request =
            "GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: application/x-ndjson\r\n"
            + "Authorization: Bearer \(ServerHarness.auditor)\r\nConnection: close\r\n\r\n"
        try LoopbackSocket.writeAll(descriptor, Array(request.utf8))
    }

    @Test func anExportWhoseClientReadsNothingIsClosedAndASlowReaderGetsItAll() async throws {
        let server = try await Self.exportServer()
        let port = server.port
        let stalled = try LoopbackSocket.connect(port: port)
        defer { close(stalled) }
        try Self.exportRequest(stalled)
        let asked = ContinuousClock.now
        // The slow reader takes 64 KiB every 50 ms: seconds for the whole export, each read
        // well within the deadline.
        let slow = try LoopbackSocket.connect(port: port)
        defer { close(slow) }
        try Self.exportRequest(slow)
        var received: [UInt8] = []
        var stalledClosedAfter: Duration?
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if stalledClosedAfter == nil, try await Self.closes(server)["write"] == 1 {
                stalledClosedAfter = ContinuousClock.now - asked
            }
            let count = try await Self.read(slow, into: &buffer)
            guard count > 0 else { break }
            received += buffer[0..<count]
            try await Task.sleep(for: .milliseconds(50))
        }
        print(
            "write deadline: the export nobody reads closed after \(String(describing: stalledClosedAfter)); "
                + "the slow reader took \(ContinuousClock.now - asked) for \(received.count) bytes")
        #expect(ContinuousClock.now - asked > .seconds(2), "the slow export outlasted the deadline")
        let lines = Self.body(ofChunked: received).split(separator: "\n")
        #expect(lines.filter { $0.contains("notification.created") }.count == 16_000)
        #expect(
            stalledClosedAfter.map { $0 >= .seconds(1) && $0 < .seconds(3) } == true,
            "\(String(describing: stalledClosedAfter))")
        #expect(try await Self.closes(server)["write"] == 1, "the slow reader was not cut off")
        await server.stop()
    }

    /// The body of a chunked HTTP response, as text, up to where it ends or breaks off.
    static func body(ofChunked response: [UInt8]) -> String {
        let crlf: [UInt8] = [13, 10]
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard response.count >= needle.count, start <= response.count - needle.count else { return nil }
            return (start...(response.count - needle.count)).first {
                response[$0..<($0 + needle.count)].elementsEqual(needle)
            }
        }
        guard var position = find(crlf + crlf, from: 0).map({ $0 + 4 }) else { return "" }
        var body: [UInt8] = []
        while let lineEnd = find(crlf, from: position),
            let size = Int(String(decoding: response[position..<lineEnd], as: UTF8.self), radix: 16), size > 0,
            lineEnd + 2 + size <= response.count
        {
            body += response[(lineEnd + 2)..<(lineEnd + 2 + size)]
            position = lineEnd + 2 + size + 2
        }
        return String(decoding: body, as: UTF8.self)
    }

    @Test func aStreamOutlivesEveryHTTPDeadline() async throws {
        let server = try await Self.server()
        let stream = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        _ = await stream.wait { $0.last?.type == "caught_up" }
        try await Task.sleep(for: .seconds(3))
        try await server.append([ServerHarness.created("alice", "n-1")])
        let messages = await stream.wait { $0.last?.type == "event" }
        #expect(messages.last?.type == "event")
        #expect(try await Self.closes(server).isEmpty)
        try await stream.close()
        await server.stop()
    }
}
