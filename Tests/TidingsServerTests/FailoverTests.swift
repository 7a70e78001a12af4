import Foundation
import NIOHTTP1
import Testing
import TidingsStore
import TidingsTestSupport

/// A node whose database fails over to a standby that had not received its last commits: the
/// log's history forks under a running node. Here the standby is a copy of the database made
/// before those commits, swapped in under the node's connection string, as a promoted standby
/// takes over the primary's address.
@Suite struct FailoverTests {
    func seqs(_ messages: [JSONValue]) -> [Int64] {
        messages.filter { $0.type == "event" }.compactMap(\.seq)
    }

    @Test func aNodeWhoseLogLosesCommitsClosesItsStreamsAndEachClientIsReset() async throws {
        let server = try await ServerHarness(engine: .postgres)
        let initial = try await server.append((1...5).map { ServerHarness.created("alice", "n-\($0)") })
        // A cursor of the shared history: an append's own, anchored at its event. (The stream's
        // cursors may be anchored at a later head, from the commits the standby lacks.)
        let early = try #require(initial.last?["cursor"]?.stringValue)
        // The standby: everything up to seq 5.
        await server.stop()
        let cluster = try PostgresCluster.shared()
        let url = try #require(server.databaseURL)
        let name = String(try #require(URLComponents(string: url)?.path.dropFirst()))
        try cluster.copyDatabase(name, to: name + "_standby")
        try await server.start()

        let alice = ServerHarness.user("alice")
        let client = await server.stream(hello: ServerHarness.hello(token: alice))
        // Commits the client sees that never reach the standby.
        try await server.append((6...8).map { ServerHarness.created("alice", "lost-\($0)") })
        let before = await client.wait { self.seqs($0).last == 8 }
        #expect(seqs(before) == Array(1...8))
        let cursor = try #require(before.last { $0.type == "event" }?["event"]?["cursor"]?.stringValue)

        // The failover: the primary's database goes, the standby's takes its name.
        try cluster.psql(each: [
            "ALTER DATABASE \(name) ALLOW_CONNECTIONS false",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(name)'",
            "ALTER DATABASE \(name) RENAME TO \(name)_lost", "ALTER DATABASE \(name)_standby RENAME TO \(name)",
        ])

        // The node sees the log behind what it streamed, and closes its streams.
        #expect(await client.waitForClose(timeout: .seconds(60)) == 1012)
        // The new history grows past the client's position, through the same node.
        let deadline = ContinuousClock.now + .seconds(30)
        var appended: [JSONValue] = []
        while appended.isEmpty && ContinuousClock.now < deadline {
            appended =
                (try? await server.append((6...9).map { ServerHarness.created("alice", "new-\($0)") })) ?? []
            if appended.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(appended.compactMap(\.seq) == [6, 7, 8, 9])

        // The client resumes with the cursor of the last event it processed: seq 8 is another
        // event now, so it is told to start over, never handed seq 9 as if nothing happened.
        let again = await server.stream(hello: ServerHarness.hello(token: alice, cursor: cursor))
        let messages = await again.wait { $0.contains { $0.type == "reset" } }
        let reset = try #require(messages.first { $0.type == "reset" })
        #expect(reset["reason"]?.stringValue == "history_forked")
        #expect(reset["unread_count"]?.integerValue == 9)
        #expect(seqs(messages).isEmpty)
        let page = try await server.request(.GET, "/v1/users/alice/events?after=\(cursor)", token: alice)
        #expect(page.status == 409)
        #expect(page.json["error"]?["code"]?.stringValue == "cursor_reset")
        // A cursor from before the lost commits still resumes exactly.
        let resumed = try await server.request(.GET, "/v1/users/alice/events?after=\(early)", token: alice)
        #expect(resumed.json["events"]?.arrayValue?.compactMap(\.seq) == [6, 7, 8, 9])
        #expect(
            resumed.json["events"]?.arrayValue?.compactMap { $0["data"]?["notification_id"]?.stringValue }
                == ["new-6", "new-7", "new-8", "new-9"])

        let metrics = try await server.request(.GET, "/metrics", token: ServerHarness.admin)
        #expect(metrics.text.contains("tidings_history_forks_total 1"))
        try? await again.close()
        await server.stop()
        cluster.dropDatabase(cluster.databaseURL(name + "_lost"))
    }
}
