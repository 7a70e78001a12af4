import Foundation
import NIOHTTP1
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// Every HTTP route and role of PROTOCOL.md against a real server, with exact bodies.
@Suite(.serialized) struct HTTPRouteTests {
    static let forbidden = #"{"error":{"code":"forbidden","message":"this token's role may not do this"}}"#
    static let unauthorized = #"{"error":{"code":"unauthorized","message":"missing or invalid bearer token"}}"#

    struct Route: CustomStringConvertible {
        var method: HTTPMethod
        var path: String
        var body: String?
        var allowed: [String]
        var description: String { "\(method) \(path)" }
    }

    static let tokens: [String: String] = [
        "alice": ServerHarness.user("alice"), "bob": ServerHarness.user("bob"), "publisher": ServerHarness.publisher,
        "auditor": ServerHarness.auditor, "admin": ServerHarness.admin,
    ]

    static let routes: [Route] = [
        Route(
            method: .POST, path: "/v1/events",
            body: #"{"type":"notification.created","user_id":"alice","id":"route-1","data":{"notification_id":"x"}}"#,
            allowed: ["publisher", "admin"]),
        Route(method: .GET, path: "/v1/events", allowed: ["auditor", "admin"]),
        Route(
            method: .POST, path: "/v1/users/alice/read", body: #"{"notification_ids":["n-1"]}"#,
            allowed: ["alice", "publisher", "admin"]),
        Route(method: .GET, path: "/v1/users/alice/events", allowed: ["alice", "auditor", "admin"]),
        Route(method: .GET, path: "/v1/users/alice/unread", allowed: ["alice", "publisher", "auditor", "admin"]),
        Route(method: .GET, path: "/v1/log/verify", allowed: ["auditor", "admin"]),
        Route(method: .GET, path: "/v1/stats", allowed: ["auditor", "admin"]),
        Route(method: .GET, path: "/v1/admin/projections/rebuild", allowed: ["admin"]),
        Route(method: .POST, path: "/v1/admin/projections/verify", allowed: ["admin"]),
    ]

    @Test(arguments: Engine.allCases) func everyRouteAgainstEveryRole(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        defer { Task { await server.stop() } }
        try await server.append([ServerHarness.created("alice", "n-1")])
        for route in Self.routes {
            for (name, token) in Self.tokens.sorted(by: { $0.key < $1.key }) {
                let reply = try await server.request(route.method, route.path, token: token, body: route.body)
                if route.allowed.contains(name) {
                    #expect((200..<300).contains(reply.status), "\(route) as \(name): \(reply.status) \(reply.text)")
                } else {
                    #expect(reply.status == 403, "\(route) as \(name): \(reply.status)")
                    #expect(reply.text == Self.forbidden)
                }
            }
            let anonymous = try await server.request(route.method, route.path, body: route.body)
            #expect(anonymous.status == 401, "\(route) without a token")
            #expect(anonymous.text == Self.unauthorized)
            #expect(anonymous.headers["WWW-Authenticate"].first == #"Bearer realm="tidings""#)
        }
        await server.stop()
    }

    @Test func badTokensAreAllUnauthorizedAlike() async throws {
        let server = try await ServerHarness()
        let signer = TokenSigner(secret: ServerHarness.secret)
        let now = Int64(Date().timeIntervalSince1970)
        let bad = AttackTokens.all()
        for (name, token) in bad {
            let reply = try await server.request(.GET, "/v1/stats", token: token)
            #expect(reply.status == 401, "\(name)")
            #expect(reply.text == Self.unauthorized, "\(name)")
        }
        // Within the 30 s leeway an expired token still works.
        let leeway = try await server.request(
            .GET, "/v1/stats", token: signer.token(subject: "a", role: .admin, expiresAt: now - 10))
        #expect(leeway.status == 200)
        let notBearer = try await server.request(.GET, "/v1/stats", headers: [("Authorization", "Basic YTpi")])
        #expect(notBearer.status == 401)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func appendResultsAndStatuses(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        let publisher = ServerHarness.publisher
        let first = try await server.request(
            .POST, "/v1/events", token: publisher,
            body: #"{"type":"notification.created","user_id":"alice","id":"e-1","data":{"notification_id":"n-1"}}"#)
        #expect(first.status == 201)
        let event = try #require(first.json["results"]?.arrayValue?.first)
        #expect(event["status"]?.stringValue == "appended")
        #expect(event["event"]?["seq"]?.integerValue == 1)
        #expect(event["event"]?["id"]?.stringValue == "e-1")
        let cursor = try #require(event["event"]?["cursor"]?.stringValue)
        #expect(Cursor.samePosition(cursor, server.store.unanchoredUserCursor("alice", streamSeq: 1)))
        let again = try await server.request(
            .POST, "/v1/events", token: publisher,
            body:
                #"{"events":[{"type":"notification.created","user_id":"alice","id":"e-1","data":{"notification_id":"n-1"}},{"type":"notification.read","user_id":"alice","data":{"notification_id":"nope"}}]}"#
        )
        #expect(again.status == 200)
        #expect(again.json["results"]?.arrayValue?.map { $0["status"]?.stringValue ?? "" } == ["duplicate", "noop"])
        #expect(again.json["results"]?.arrayValue?[1]["event"] == nil)
        let conflict = try await server.request(
            .POST, "/v1/events", token: publisher,
            body:
                #"{"events":[{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-2"}},{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-1"}}]}"#
        )
        #expect(conflict.status == 409)
        #expect(
            conflict.text
                == #"{"error":{"code":"conflict","message":"the user already has a notification with this notification_id","index":1}}"#
        )
        #expect(try await server.store.headSeq() == 1)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func checksRunInTheProtocolsOrder(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        let huge = String(repeating: "x", count: 9 << 20)
        // 401 before 403 before 415 before 413 before 400.
        var reply = try await server.request(.POST, "/v1/events", token: "bad", body: huge, contentType: "text/plain")
        #expect(reply.status == 401)
        reply = try await server.request(
            .POST, "/v1/events", token: ServerHarness.auditor, body: huge, contentType: "text/plain")
        #expect(reply.status == 403)
        reply = try await server.request(
            .POST, "/v1/events", token: ServerHarness.publisher, body: huge, contentType: "text/plain")
        #expect(reply.status == 415)
        #expect(
            reply.text
                == #"{"error":{"code":"unsupported_media_type","message":"the body must be Content-Type: application/json"}}"#
        )
        reply = try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, body: huge)
        #expect(reply.status == 413)
        #expect(reply.json["error"]?["code"]?.stringValue == "payload_too_large")
        reply = try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, body: "{")
        #expect(reply.status == 400)
        reply = try await server.request(
            .POST, "/v1/events", token: ServerHarness.publisher, body: ServerHarness.created("a", "n"),
            contentType: "application/json; charset=utf-8")
        #expect(reply.status == 201)
        await server.stop()
    }

    static let badBodies: [(String, String)] = [
        (#"{"type":"notification.created","user_id":"alice","data":{"notification_id":"n"}"#, "body is not valid JSON"),
        (#"{"type":"notification.created","user_id":7,"data":{"notification_id":"n"}}"#, "user_id must be a string"),
        (
            #"{"type":"notification.created","user_id":"alice","data":{"notification_id":"n","extra":1}}"#,
            "data.extra is not a field of notification.created"
        ),
        (
            #"{"type":"notification.created","user_id":"alice","data":{"notification_id":"n"},"extra":1}"#,
            "extra is not a field of an event (expected type, user_id, id, data)"
        ),
        (String(repeating: "[", count: 5000), "body must be a JSON object"),
        (
            #"{"type":"notification.created","user_id":"alice","data":{"notification_id":"n","metadata":"#
                + String(repeating: "[", count: 100) + "}}",
            "body is not valid JSON"
        ),
        ("{\"type\":\"notification.created\",\"user_id\":\"al\u{00}ice\",\"data\":{}}", "body is not valid JSON"),
        (#"{"events":[]}"#, "events must not be empty"),
        ("", "body must be one event"),
    ]

    @Test(arguments: Engine.allCases) func badInputIsRefusedAndAppendsNothing(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        for (body, message) in Self.badBodies {
            let reply = try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, body: body)
            #expect(reply.status == 400, "\(body.prefix(60))")
            #expect(reply.json["error"]?["code"]?.stringValue == "bad_request")
            #expect(reply.json["error"]?["message"]?.stringValue?.hasPrefix(message) == true, "\(reply.text)")
        }
        let invalidUTF8: [UInt8] =
            Array(#"{"type":"notification.created","user_id":"a","data":{"notification_id":""#.utf8) + [0xC3, 0x28]
            + Array(#""}}"#.utf8)
        let reply = try await server.request(.POST, "/v1/events", token: ServerHarness.publisher, bytes: invalidUTF8)
        #expect(reply.status == 400)
        #expect(try await server.store.headSeq() == 0)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func readRouteAndUnread(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...4).map { ServerHarness.created("alice", "n-\($0)") })
        let alice = ServerHarness.user("alice")
        var reply = try await server.request(
            .POST, "/v1/users/alice/read", token: alice, body: #"{"notification_ids":["n-2","zzz","n-2"]}"#)
        var head = try await server.store.head()
        #expect(
            reply.text
                == #"{"read":["n-2"],"unread_count":3,"unseen_count":3,"archived_count":0,"cursor":"\#(server.store.userCursor("alice", streamSeq: 5, anchor: head))"}"#
        )
        reply = try await server.request(
            .POST, "/v1/users/alice/read", token: alice, body: #"{"all":true,"up_to_seq":3}"#)
        #expect(reply.json["read"]?.arrayValue?.compactMap(\.stringValue) == ["n-1", "n-3"])
        reply = try await server.request(.GET, "/v1/users/alice/unread?limit=1", token: alice)
        #expect(reply.json["unread_count"]?.integerValue == 1)
        #expect(reply.json["notifications"]?.arrayValue?.count == 1)
        reply = try await server.request(.GET, "/v1/users/nobody/unread", token: ServerHarness.auditor)
        head = try await server.store.head()
        #expect(
            reply.text
                == #"{"unread_count":0,"unseen_count":0,"archived_count":0,"notifications":[],"cursor":"\#(server.store.userCursor("nobody", streamSeq: 0, anchor: head))"}"#
        )
        for body in [
            #"{"all":false}"#, #"{"notification_ids":"n-1"}"#, #"{"notification_ids":[1]}"#,
            #"{"all":true,"notification_ids":[]}"#, #"{"all":true,"up_to_seq":0}"#, "[]",
        ] {
            reply = try await server.request(.POST, "/v1/users/alice/read", token: alice, body: body)
            #expect(reply.status == 400, "\(body)")
        }
        let many = "[" + (0...1000).map { #""n\#($0)""# }.joined(separator: ",") + "]"
        reply = try await server.request(
            .POST, "/v1/users/alice/read", token: alice, body: #"{"notification_ids":\#(many)}"#)
        #expect(reply.status == 413)
        // Percent-encoded path segments are decoded before they are checked.
        reply = try await server.request(.GET, "/v1/users/al%69ce/unread", token: alice)
        #expect(reply.status == 200)
        reply = try await server.request(.GET, "/v1/users/a%20b/unread", token: ServerHarness.admin)
        #expect(reply.status == 400)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func pagesAndCursorsOverHTTP(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append((1...5).map { ServerHarness.created("alice", "n-\($0)") })
        let alice = ServerHarness.user("alice")
        var reply = try await server.request(.GET, "/v1/users/alice/events?limit=2", token: alice)
        #expect(reply.json["events"]?.arrayValue?.count == 2)
        #expect(reply.json["has_more"]?.boolValue == true)
        let next = try #require(reply.json["next_cursor"]?.stringValue)
        reply = try await server.request(.GET, "/v1/users/alice/events?after=\(next)&limit=1000", token: alice)
        #expect(reply.json["events"]?.arrayValue?.compactMap(\.seq) == [3, 4, 5])
        #expect(reply.json["has_more"]?.boolValue == false)
        for limit in ["0", "1001", "x", "-1"] {
            reply = try await server.request(.GET, "/v1/users/alice/events?limit=\(limit)", token: alice)
            #expect(reply.status == 400)
            #expect(
                reply.text
                    == #"{"error":{"code":"bad_request","message":"limit must be an integer between 1 and 1000"}}"#)
        }
        reply = try await server.request(.GET, "/v1/users/alice/events?after=nonsense", token: alice)
        #expect(reply.text == #"{"error":{"code":"invalid_cursor","message":"cursor is malformed"}}"#)
        reply = try await server.request(
            .GET, "/v1/users/alice/events?after=\(server.store.unanchoredUserCursor("bob", streamSeq: 0))", token: alice
        )
        #expect(reply.status == 400)
        let ahead = server.store.unanchoredUserCursor("alice", streamSeq: 9)
        reply = try await server.request(.GET, "/v1/users/alice/events?after=\(ahead)", token: alice)
        #expect(reply.status == 409)
        let head = try await server.store.head()
        #expect(
            reply.text
                == #"{"error":{"code":"cursor_reset","message":"cursor is past the head of the stream","head":"\#(server.store.userCursor("alice", streamSeq: 5, anchor: head))"}}"#
        )
        reply = try await server.request(
            .GET, "/v1/events?type=notification.created&type=notification.read&limit=3", token: ServerHarness.auditor)
        #expect(reply.json["events"]?.arrayValue?.count == 3)
        for query in ["type=bogus", "since=yesterday", "until=2026-13-01T00:00:00Z", "user_id=a%20b"] {
            reply = try await server.request(.GET, "/v1/events?\(query)", token: ServerHarness.auditor)
            #expect(reply.status == 400, "\(query)")
        }
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func ndjsonExportStreamsEverythingWithBoundedMemory(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        // More than the export's bound (4 chunks of 64 KiB): about 3 MB of envelopes.
        let body = String(repeating: "b", count: 400)
        for batch in 0..<6 {
            try await server.append(
                (0..<1000).map { ServerHarness.created("u\($0 % 7)", "n-\(batch)-\($0)", title: body) })
        }
        let reply = try await server.request(
            .GET, "/v1/events", token: ServerHarness.auditor, headers: [("Accept", "application/x-ndjson")])
        #expect(reply.status == 200)
        #expect(reply.headers["Content-Type"].first == "application/x-ndjson")
        let lines = reply.text.split(separator: "\n")
        #expect(lines.count == 6000)
        #expect(reply.body.count > 3_000_000)
        #expect(
            lines.enumerated().allSatisfy { index, line in (try? JSONValue.parse(String(line)))?.seq == Int64(index + 1)
            })
        let after = try await server.request(
            .GET, "/v1/events?after=\(server.store.unanchoredAllCursor(seq: 5990))&type=notification.created",
            token: ServerHarness.auditor,
            headers: [("Accept", "application/x-ndjson")])
        #expect(after.text.split(separator: "\n").count == 10)
        let reset = try await server.request(
            .GET, "/v1/events?after=\(server.store.unanchoredAllCursor(seq: 7000))", token: ServerHarness.auditor,
            headers: [("Accept", "application/x-ndjson")])
        #expect(reset.status == 409)
        await server.stop()
    }

    @Test(arguments: Engine.allCases) func auditAndAdminRoutes(engine: Engine) async throws {
        let server = try await ServerHarness(engine: engine)
        try await server.append([ServerHarness.created("alice", "n-1"), ServerHarness.created("bob", "n-1")])
        var reply = try await server.request(.GET, "/v1/log/verify", token: ServerHarness.auditor)
        #expect(reply.json["ok"]?.boolValue == true)
        #expect(reply.json["head_seq"]?.integerValue == 2)
        let hash = try #require(reply.json["head_hash"]?.stringValue)
        reply = try await server.request(.GET, "/v1/log/verify?seq=2&hash=\(hash)", token: ServerHarness.auditor)
        #expect(reply.json["checkpoint_ok"]?.boolValue == true)
        reply = try await server.request(.GET, "/v1/log/verify?seq=9&hash=\(hash)", token: ServerHarness.auditor)
        #expect(reply.json["checkpoint_ok"]?.boolValue == false)
        for query in ["seq=2", "hash=\(hash)", "seq=2&hash=XYZ", "seq=-1&hash=\(hash)"] {
            reply = try await server.request(.GET, "/v1/log/verify?\(query)", token: ServerHarness.auditor)
            #expect(reply.status == 400, "\(query)")
        }
        reply = try await server.request(.GET, "/v1/stats", token: ServerHarness.auditor)
        #expect(reply.json["events"]?.integerValue == 2)
        #expect(reply.json["users"]?.integerValue == 2)
        #expect(reply.json["live_connections"]?.integerValue == 0)
        reply = try await server.request(.GET, "/v1/admin/projections/rebuild", token: ServerHarness.admin)
        #expect(reply.text == #"{"job":null}"#)
        reply = try await server.request(.POST, "/v1/admin/projections/rebuild", token: ServerHarness.admin, body: "{}")
        #expect(reply.status == 202)
        #expect(reply.json["job"]?["state"]?.stringValue == "running")
        for _ in 0..<200 {
            reply = try await server.request(.GET, "/v1/admin/projections/rebuild", token: ServerHarness.admin)
            if reply.json["job"]?["state"]?.stringValue != "running" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(reply.json["job"]?["state"]?.stringValue == "done")
        #expect(reply.json["job"]?["phase"]?.stringValue == "swapping")
        #expect(reply.json["job"]?["processed"]?.integerValue == 2)
        #expect(reply.json["job"]?["finished_at"]?.stringValue != nil)
        reply = try await server.request(
            .POST, "/v1/admin/projections/rebuild", token: ServerHarness.admin, body: #"{"x":1}"#)
        #expect(reply.status == 400)
        reply = try await server.request(.POST, "/v1/admin/projections/verify", token: ServerHarness.admin)
        #expect(reply.text == #"{"ok":true,"users_checked":2,"mismatches":[]}"#)
        await server.stop()
    }

    @Test func serviceRoutesAndUnknownPaths() async throws {
        let server = try await ServerHarness()
        var reply = try await server.request(.GET, "/healthz")
        #expect(reply.text == #"{"status":"ok"}"#)
        try await server.append([ServerHarness.created("alice", "n-1")])
        reply = try await server.request(.GET, "/metrics")
        #expect(reply.text.contains("tidings_appended_events_total 1"))
        #expect(reply.text.contains("tidings_append_duration_seconds_bucket"))
        #expect(!reply.text.contains("alice"))
        reply = try await server.request(.GET, "/v1/openapi.yaml")
        #expect(reply.text.contains("openapi: 3.1.0"))
        reply = try await server.request(.GET, "/v1/envelope.json")
        #expect(reply.json["$id"]?.stringValue == "envelope.json")
        reply = try await server.request(.GET, "/v1/nothing")
        #expect(reply.text == #"{"error":{"code":"not_found","message":"no route for /v1/nothing"}}"#)
        reply = try await server.request(.DELETE, "/v1/events", token: ServerHarness.admin)
        #expect(reply.status == 405)
        #expect(
            reply.text == #"{"error":{"code":"method_not_allowed","message":"DELETE is not allowed on this path"}}"#)
        reply = try await server.request(.PUT, "/v1/users/alice/read", token: ServerHarness.admin)
        #expect(reply.status == 405)
        #expect(reply.headers["X-Request-Id"].first?.count == 16)
        await server.stop()
    }

    /// Requests are counted and timed by the route the router matched, never by the path (which
    /// may carry a user id); a wrong method on any registered path is 405 with the methods the
    /// router has for it.
    @Test func requestMetricsNameTheMatchedRouteAndEveryWrongMethodIs405() async throws {
        let server = try await ServerHarness()
        try await server.append([ServerHarness.created("alice", "n-1")])
        _ = try await server.request(.GET, "/v1/users/alice/unread", token: ServerHarness.user("alice"))
        _ = try await server.request(.GET, "/v1/users/alice/unread", token: ServerHarness.user("alice"))
        _ = try await server.request(.GET, "/v1/nothing/here")
        let metrics = try await server.request(.GET, "/metrics").text
        #expect(
            metrics.contains(
                #"tidings_http_requests_total{route="/v1/users/{user_id}/unread",method="GET",status="200"} 2"#),
            "\(metrics.split(separator: "\n").filter { $0.contains("http_requests") })")
        #expect(metrics.contains(#"tidings_http_requests_total{route="/v1/events",method="POST",status="201"} 1"#))
        #expect(metrics.contains(#"tidings_http_requests_total{route="NotFound",method="GET",status="404"} 1"#))
        #expect(
            metrics.contains(
                #"tidings_http_request_duration_seconds_count{route="/v1/users/{user_id}/unread",method="GET"} 2"#))
        #expect(!metrics.contains("alice"))
        // The read lanes: the unread reads waited for nothing like a second.
        #expect(metrics.contains("# TYPE tidings_store_read_wait_seconds histogram"))
        #expect(metrics.contains(#"tidings_store_read_wait_seconds_bucket{lane="short",le="1.0"} "#))
        #expect(metrics.contains(#"tidings_store_read_connections_max{lane="scan"} 2"#))
        #expect(metrics.contains(#"tidings_store_reads_waiting{lane="short"} 0"#))

        let routes: [(String, [String])] = [
            ("/v1/events", ["POST", "GET"]), ("/v1/users/bob/read", ["POST"]), ("/v1/users/bob/events", ["GET"]),
            ("/v1/users/bob/unread", ["GET"]), ("/v1/log/verify", ["GET"]), ("/v1/stats", ["GET"]),
            ("/v1/admin/projections/rebuild", ["POST", "GET"]), ("/v1/admin/projections/verify", ["POST"]),
            ("/v1/stream", ["GET"]), ("/healthz", ["GET"]), ("/metrics", ["GET"]), ("/v1/openapi.yaml", ["GET"]),
            ("/v1/envelope.json", ["GET"]), ("/", ["GET"]), ("/console", ["GET"]), ("/web/inbox.js", ["GET"]),
        ]
        for (path, methods) in routes {
            for method in [HTTPMethod.GET, .POST, .PUT, .DELETE, .PATCH] where !methods.contains(method.rawValue) {
                let reply = try await server.request(method, path, token: ServerHarness.admin)
                #expect(reply.status == 405, "\(method) \(path): \(reply.status)")
                #expect(reply.headers["Allow"].first == methods.joined(separator: ", "), "\(method) \(path)")
            }
        }
        await server.stop()
    }

    /// A streamed export is timed until its last byte is written: an export larger than every
    /// socket buffer between the server and a client that pauses for 600 ms after the first
    /// bytes cannot finish sooner, and neither can its request's time.
    @Test func aStreamedExportIsTimedUntilItIsWritten() async throws {
        let server = try await ServerHarness()
        let title = String(repeating: "x", count: 400)
        for batch in 0..<16 {
            try await server.append(
                (0..<1_000).map { ServerHarness.created("u\($0 % 9)", "n-\(batch)-\($0)", title: title) })
        }
        let descriptor = try LoopbackSocket.connect(port: server.port)
        defer { close(descriptor) }
        LoopbackSocket.setReceiveBuffer(descriptor, bytes: 256 * 1024)
        let request =
            "GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: application/x-ndjson\r\n"
            + "Authorization: Bearer \(ServerHarness.auditor)\r\nConnection: close\r\n\r\n"
        try LoopbackSocket.writeAll(descriptor, Array(request.utf8))
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var received = read(descriptor, &buffer, buffer.count)
        #expect(received > 0)
        try await Task.sleep(for: .milliseconds(600))
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            received += count
        }
        // More than the server's largest send buffer (4 MiB here) and the client's together.
        #expect(received > 8_000_000)
        let metrics = try await server.request(.GET, "/metrics").text
        let sum = metrics.split(separator: "\n").first {
            $0.hasPrefix(#"tidings_http_request_duration_seconds_sum{route="/v1/events",method="GET"}"#)
        }
        let seconds = sum.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
        #expect(seconds >= 0.6, "the export was timed at \(seconds) s; its client paused 0.6 s")
        await server.stop()
    }
}
