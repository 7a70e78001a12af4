import Foundation
import NIOHTTP1
import Testing

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// The browser pages as HTTP sees them: served from the binary's resources with their types,
/// a policy that lets only this origin's code run, revalidation by ETag, and nothing else
/// reachable under `/web/`. (What the pages do runs in a real browser: Tests/browser.)
@Suite(.serialized) struct WebPageTests {
    @Test func pagesAndTheirFilesAreServedWithTypesAndPolicy() async throws {
        let server = try await ServerHarness()
        let files = [
            ("/", "text/html; charset=utf-8", "<title>Tidings inbox</title>"),
            ("/console", "text/html; charset=utf-8", "<title>Tidings console</title>"),
            ("/web/inbox.js", "text/javascript; charset=utf-8", "TidingsClient"),
            ("/web/tidings.js", "text/javascript; charset=utf-8", "export class TidingsClient"),
            ("/web/console.js", "text/javascript; charset=utf-8", "TimeChart"),
            ("/web/style.css", "text/css; charset=utf-8", ":root"),
            ("/web/icon.svg", "image/svg+xml", "<svg"),
        ]
        for (path, type, content) in files {
            let reply = try await server.request(.GET, path)
            #expect(reply.status == 200, "\(path)")
            #expect(reply.headers["Content-Type"].first == type, "\(path)")
            #expect(reply.text.contains(content), "\(path)")
            #expect(reply.headers["Content-Security-Policy"].first == WebPages.securityPolicy, "\(path)")
            #expect(reply.headers["X-Content-Type-Options"].first == "nosniff", "\(path)")
            let etag = try #require(reply.headers["ETag"].first)
            let again = try await server.request(.GET, path, headers: [("If-None-Match", etag)])
            #expect(again.status == 304, "\(path)")
            #expect(again.body.isEmpty)
        }
        // The policy allows no inline script, so every script the pages run is a file of theirs:
        // each script element names its source, and no element carries an event attribute.
        for page in ["/", "/console"] {
            let html = try await server.request(.GET, page).text
            #expect(html.contains(/<script[^>]*\ssrc="\/web\/[a-z]+\.js"/), "\(page)")
            #expect(!html.contains(/<script(?![^>]*\ssrc=)/), "\(page)")
            #expect(!html.contains(/\son[a-z]+\s*=/), "\(page)")
        }
        await server.stop()
    }

    @Test func onlyThePagesFilesAreReachable() async throws {
        let server = try await ServerHarness()
        for path in [
            "/web/missing.js", "/web/..%2FSchemas%2Fopenapi.yaml", "/web/%2e%2e%2fjwt-secret", "/web/",
            "/web/inbox.js/extra", "/index.html",
        ] {
            let reply = try await server.request(.GET, path)
            #expect(reply.status == 404, "\(path): \(reply.status) \(reply.text)")
            #expect(reply.json["error"]?["code"]?.stringValue == "not_found", "\(path)")
        }
        let post = try await server.request(.POST, "/", body: "{}")
        #expect(post.status == 405)
        #expect(post.headers["Allow"].first == "GET")
        await server.stop()
    }

    /// The console tails the `all` stream from the head `/v1/stats` names: a hello with it
    /// replays nothing and then delivers what comes next.
    @Test func statsNameTheHeadTheConsoleTailsFrom() async throws {
        let server = try await ServerHarness()
        try await server.append([ServerHarness.created("alice", "n-1"), ServerHarness.created("bob", "n-2")])
        let stats = try await server.request(.GET, "/v1/stats", token: ServerHarness.auditor).json
        #expect(stats["head_seq"]?.integerValue == 2)
        let head = try #require(stats["head"]?.stringValue)
        #expect(Cursor.samePosition(head, server.store.unanchoredAllCursor(seq: 2)))
        let tail = await server.stream(
            hello: ServerHarness.hello(token: ServerHarness.auditor, stream: "all", cursor: head))
        let caughtUp = await tail.wait { $0.contains { $0["type"]?.stringValue == "caught_up" } }
        #expect(caughtUp.map { $0["type"]?.stringValue } == ["welcome", "caught_up"])
        try await server.append([ServerHarness.created("carol", "n-3")])
        let live = await tail.wait { $0.count == 3 }
        #expect(live.last?["event"]?["seq"]?.integerValue == 3)
        try await tail.close()
        await server.stop()
    }
}
