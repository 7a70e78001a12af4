import Foundation
import NIOHTTP1
import Testing
import TidingsSQLite
import TidingsStore

@testable import TidingsServer

/// Who may do what, and that a refused credential is never accepted through a side door nor
/// repeated back: not in a response, not in a log line at any level.
@Suite struct SecurityTests {
    /// The parts of a token worth stealing: the whole of it and its signature.
    static func secrets(of token: String) -> [String] {
        let signature = token.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return [token, signature].filter { $0.count >= 16 }
    }

    @Test func attackTokensAreRefusedOnEveryDoorAndNeverEchoed() async throws {
        let logs = LogCapture()
        // The default hello deadline: with 2 s a hello sent right after the upgrade once arrived
        // too late on a machine busy with the rest of the tests (4408 instead of 4401).
        let server = try await ServerHarness(logs: logs) { $0.helloTimeout = .seconds(10) }
        try await server.append([ServerHarness.created("alice", "n-1")])
        var echoed: [String] = []
        for (name, token) in AttackTokens.all() {
            let reply = try await server.request(.GET, "/v1/users/alice/unread", token: token)
            #expect(reply.status == 401, "\(name) over HTTP")
            let stream = await server.stream(hello: ServerHarness.hello(token: token))
            let inHello = await stream.waitForClose()
            #expect(inHello == 4401, "\(name) in a hello: closed with \(String(describing: inHello))")
            let upgrade = await server.stream(
                hello: #"{"type":"hello"}"#, headers: [("Authorization", "Bearer \(token)")])
            let onUpgrade = await upgrade.waitForClose()
            #expect(onUpgrade == 4401, "\(name) on the upgrade: closed with \(String(describing: onUpgrade))")
            let answers = [reply.text] + (stream.received() + upgrade.received()).map { "\($0)" }
            for secret in Self.secrets(of: token) where answers.contains(where: { $0.contains(secret) }) {
                echoed.append(name)
            }
        }
        // A token in the query string is not a credential, on any route or the stream.
        let admin = ServerHarness.admin
        let queries = ["?token=", "?access_token=", "?jwt="]
        var streams: [ServerHarness.StreamClient] = []
        for query in queries {
            let reply = try await server.request(.GET, "/v1/stats" + query + admin)
            #expect(reply.status == 401, "token in \(query)")
            // Opened together, so their hello deadlines run out together.
            streams.append(await server.stream(hello: nil, query: query + ServerHarness.user("alice")))
        }
        for (query, stream) in zip(queries, streams) {
            #expect(
                await stream.waitForClose(timeout: .seconds(30)) == 4408, "a stream with \(query) still needs its hello"
            )
        }
        let lines = logs.all
        #expect(lines.contains { $0.contains("status=401") }, "the capture sees the request log: \(lines.prefix(5))")
        let tokens = AttackTokens.all().map(\.1) + [admin, ServerHarness.user("alice")]
        let leaked = tokens.flatMap(Self.secrets).filter { secret in lines.contains { $0.contains(secret) } }
        #expect(echoed.isEmpty, "tokens repeated in answers: \(echoed)")
        #expect(leaked.isEmpty, "tokens in \(lines.count) log lines: \(leaked.map { $0.prefix(24) })")
        #expect(try await server.store.headSeq() == 1)
        await server.stop()
    }

    /// Every role (and a user opening another user's stream) against every stream.
    @Test func streamAuthorizationMatrix() async throws {
        let server = try await ServerHarness()
        try await server.append([ServerHarness.created("alice", "n-1"), ServerHarness.created("bob", "n-2")])
        let alice = ServerHarness.user("alice")
        // (who, hello fields, expected: nil for a welcome, else the close code)
        let cases: [(String, String, Int?)] = [
            ("alice, own stream", ServerHarness.hello(token: alice), nil),
            ("alice, own stream named", ServerHarness.hello(token: alice, user: "alice"), nil),
            ("alice, bob's stream", ServerHarness.hello(token: alice, user: "bob"), 4403),
            ("alice, all", ServerHarness.hello(token: alice, stream: "all"), 4403),
            ("publisher, own", ServerHarness.hello(token: ServerHarness.publisher), 4403),
            ("publisher, alice", ServerHarness.hello(token: ServerHarness.publisher, user: "alice"), 4403),
            ("publisher, all", ServerHarness.hello(token: ServerHarness.publisher, stream: "all"), 4403),
            ("auditor, alice", ServerHarness.hello(token: ServerHarness.auditor, user: "alice"), nil),
            ("auditor, all", ServerHarness.hello(token: ServerHarness.auditor, stream: "all"), nil),
            ("admin, alice", ServerHarness.hello(token: ServerHarness.admin, user: "alice"), nil),
            ("admin, all", ServerHarness.hello(token: ServerHarness.admin, stream: "all"), nil),
        ]
        for (who, hello, expected) in cases {
            let client = await server.stream(hello: hello)
            if let expected {
                #expect(await client.waitForClose() == expected, "\(who)")
                #expect(!client.received().contains { $0.type == "event" }, "\(who) saw no event")
            } else {
                await client.wait { $0.contains { $0.type == "caught_up" } }
                let events = client.received().filter { $0.type == "event" }
                let users = Set(events.compactMap { $0["event"]?["user_id"]?.stringValue })
                #expect(!events.isEmpty, "\(who)")
                // A user stream carries that user's events only.
                if !hello.contains("\"all\"") { #expect(users.count == 1, "\(who): \(users)") }
                try await client.close()
            }
        }
        // Reads over the stream: the user itself and an admin may; an auditor may not.
        for (who, token, status) in [("alice", alice, "ok"), ("auditor", ServerHarness.auditor, "forbidden")] {
            let client = await server.stream(hello: ServerHarness.hello(token: token, user: "alice"))
            await client.wait { $0.contains { $0.type == "caught_up" } }
            try await client.send(#"{"type":"read","ref":"r","notification_ids":["n-1"]}"#)
            await client.wait { $0.contains { $0.type == "ack" } }
            #expect(client.received().first { $0.type == "ack" }?["status"]?.stringValue == status, "\(who)")
            try await client.close()
        }
        await server.stop()
    }
}
