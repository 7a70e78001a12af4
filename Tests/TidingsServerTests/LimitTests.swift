import Foundation
import NIOHTTP1
import Testing
import TidingsSQLite
import TidingsStore
import TidingsTestSupport

@testable import TidingsServer

/// Every bound the server keeps, tested at the bound: one under passes, one over is refused
/// with its documented answer, and nothing is appended by a refused request.
@Suite struct LimitTests {
    /// A raw TCP connection to the server, for what HTTP clients will not send.
    final class RawConnection {
        let descriptor: Int32

        init(port: Int) throws {
            descriptor = try LoopbackSocket.connect(port: port)
        }

        deinit { close(descriptor) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
                guard count > 0 else { return }
                written += count
            }
        }

        /// Everything the server sends until it closes or goes quiet for five seconds. It polls
        /// rather than blocks: a blocked read would hold one of the few cooperative threads the
        /// server itself needs to answer.
        func readAll() async -> String {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                let count = chunk.withUnsafeMutableBytes {
                    recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
                }
                if count > 0 {
                    out += chunk[0..<count]
                } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                    break
                } else {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// True when the server has closed the connection without sending a byte (checked now,
        /// without waiting).
        func closedWithoutAnswer() -> Bool {
            var byte: UInt8 = 0
            return recv(descriptor, &byte, 1, Int32(MSG_DONTWAIT)) == 0
        }
    }

    static func request(_ port: Int, headers: [String] = []) -> String {
        (["GET /healthz HTTP/1.1", "Host: 127.0.0.1:\(port)"] + headers + ["Connection: close", "", ""])
            .joined(separator: "\r\n")
    }

    @Test func requestHeadsAreBounded() async throws {
        let server = try await ServerHarness {
            $0.requestHeaderBytesMax = 4_096
            $0.requestHeaderFieldsMax = 20
        }
        let port = server.port
        let under = try RawConnection(port: port)
        under.send(Self.request(port, headers: ["X-Padding: " + String(repeating: "a", count: 3_000)]))
        #expect(await under.readAll().hasPrefix("HTTP/1.1 200"))
        let over = try RawConnection(port: port)
        over.send(Self.request(port, headers: ["X-Padding: " + String(repeating: "a", count: 5_000)]))
        let refused = await over.readAll()
        #expect(refused.hasPrefix("HTTP/1.1 431"), "a head over the bound is refused: \(refused.prefix(80))")
        let many = try RawConnection(port: port)
        many.send(Self.request(port, headers: (0..<25).map { "X-Field-\($0): x" }))
        #expect(await many.readAll().hasPrefix("HTTP/1.1 431"))
        let malformed = try RawConnection(port: port)
        malformed.send("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n")
        #expect(await malformed.readAll().hasPrefix("HTTP/1.1 400"))
        // The server goes on serving.
        #expect(try await server.request(.GET, "/healthz").status == 200)
        await server.stop()
    }

    @Test func connectionsPerAddressAreBounded() async throws {
        let server = try await ServerHarness { $0.connectionsPerAddressMax = 3 }
        let port = server.port
        // Four at once: connections are admitted on several event loops, so which one of the
        // four is refused is not fixed, but exactly one is, before it sends anything.
        var held = try (0..<4).map { _ in try RawConnection(port: port) }
        var refused: [RawConnection] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while refused.isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            refused = held.filter { $0.closedWithoutAnswer() }
        }
        try await Task.sleep(for: .milliseconds(200))
        refused = held.filter { $0.closedWithoutAnswer() }
        #expect(refused.count == 1, "one connection over the bound of three is closed on accept")
        // Once one goes, a new connection is admitted and served.
        held.removeAll { $0.closedWithoutAnswer() }
        held.removeFirst()
        try await Task.sleep(for: .milliseconds(200))
        let again = try RawConnection(port: port)
        again.send(Self.request(port))
        #expect(await again.readAll().hasPrefix("HTTP/1.1 200"))
        held.removeAll()
        await server.stop()
    }

    @Test func streamsPerSubjectAreBounded() async throws {
        let server = try await ServerHarness { $0.streamsPerSubjectMax = 2 }
        let hello = ServerHarness.hello(token: ServerHarness.user("alice"))
        let first = await server.stream(hello: hello)
        let second = await server.stream(hello: hello)
        for client in [first, second] { await client.wait { $0.contains { $0.type == "caught_up" } } }
        let third = await server.stream(hello: hello)
        #expect(await third.waitForClose() == 1013)
        #expect(third.received().last?["code"]?.stringValue == "unavailable")
        // Another user is not affected; and once one of alice's streams closes, she may open one.
        let bob = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("bob")))
        await bob.wait { $0.contains { $0.type == "caught_up" } }
        #expect(bob.received().contains { $0.type == "caught_up" })
        try await first.close()
        #expect(await first.waitForClose() != nil)
        try await Task.sleep(for: .milliseconds(200))
        let fourth = await server.stream(hello: hello)
        await fourth.wait { $0.contains { $0.type == "caught_up" } }
        #expect(fourth.received().contains { $0.type == "caught_up" })
        await server.stop()
    }

    @Test func webSocketMessagesAreBounded() async throws {
        let server = try await ServerHarness { $0.webSocketMessageBytesMax = 4_096 }
        let client = await server.stream(hello: ServerHarness.hello(token: ServerHarness.user("alice")))
        await client.wait { $0.contains { $0.type == "caught_up" } }
        // Under the bound: an unknown read is answered, the connection stays.
        let ids = (0..<10).map { #""n-\#($0)""# }.joined(separator: ",")
        try await client.send(#"{"type":"read","ref":"r1","notification_ids":[\#(ids)]}"#)
        await client.wait { $0.contains { $0.type == "ack" } }
        #expect(client.received().contains { $0.type == "ack" })
        try await client.send(
            #"{"type":"read","ref":"r2","notification_ids":["\#(String(repeating: "a", count: 5_000))"]}"#)
        let code = await client.waitForClose()
        #expect(
            code == 1009, "a message over the bound closes with 1009 (message too big), got \(String(describing: code))"
        )
        await server.stop()
    }

    @Test func requestBodiesAreBounded() async throws {
        let server = try await ServerHarness { $0.requestBodyBytesMax = 10_000 }
        let events = (0..<200).map { ServerHarness.created("alice", "n-\($0)") }
        let body = #"{"events":[\#(events.joined(separator: ","))]}"#
        #expect(body.utf8.count > 10_000)
        let reply = try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, body: body)
        #expect(reply.status == 413)
        #expect(reply.json["error"]?["code"]?.stringValue == "payload_too_large")
        #expect(try await server.store.headSeq() == 0)
        let small = #"{"events":[\#(events.prefix(5).joined(separator: ","))]}"#
        #expect(
            try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, body: small).status == 201)
        await server.stop()
    }
}
