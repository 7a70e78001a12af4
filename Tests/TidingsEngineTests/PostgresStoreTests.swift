import Foundation
import Synchronization
import Testing
import TidingsPostgres
import TidingsStore
import TidingsTestSupport

/// The PostgreSQL engine's own promises: several nodes on one database append one gapless log,
/// the log refuses changes, verify names damage, a rebuild runs while appends go on, and nodes
/// hear of each other's commits.
@Suite struct PostgresStoreTests {
    /// A node that starts while others append and drain the outbox (a rolling deploy) joins
    /// without a schema change, so it neither blocks their commits nor deadlocks with them.
    @Test func nodesJoinWhileOthersAppend() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let first = try await EngineStore.openPostgres(url, blockTargetBytes: 512)
        defer { first.close() }
        let appending = Task {
            for index in 0..<200 { _ = try await first.append([created("u\(index % 3)", "n-\(index)")]) }
        }
        for _ in 0..<6 {
            let joining = try await EngineStore.openPostgres(url, blockTargetBytes: 512)
            #expect(joining.epoch == first.epoch)
            _ = try await joining.append([created("joiner", "n-\(UUID().uuidString)")])
            joining.close()
        }
        try await appending.value
        #expect(try await first.headSeq() == 206)
        let log = try await first.verifyLog()
        #expect(log.ok)
    }

    @Test func nodesOnOneDatabaseAppendOneGaplessLogInCommitOrder() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let nodes = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<3 { group.addTask { try await EngineStore.openPostgres(url, blockTargetBytes: 512) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        defer { for node in nodes { node.close() } }
        #expect(Set(nodes.map(\.epoch)).count == 1)
        let workers = 8
        let perWorker = 40
        let acknowledged = Acknowledged()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<workers {
                let node = nodes[worker % nodes.count]
                group.addTask {
                    for index in 0..<perWorker {
                        let id = "w\(worker)-\(index)"
                        let results = try await node.append([created("user-\(worker % 5)", id, id: id)])
                        let seq = try #require(results[0].event?.seq)
                        acknowledged.seqs.withLock { $0[seq] = id }
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = workers * perWorker
        let seen = acknowledged.seqs.withLock { $0 }
        #expect(seen.count == total)
        #expect(Set(seen.keys) == Set(1...Int64(total)))
        // Every node reads the same log, each event at the seq its append was acknowledged with.
        for node in nodes {
            var events: [StoredEvent] = []
            try await node.exportNDJSON(after: nil) { _, _ in true }
            var cursor: String?
            repeat {
                let page = try await node.allEvents(after: cursor, filter: EventFilter(), limit: 100)
                events += page.events
                cursor = page.nextCursor
                if !page.hasMore { break }
            } while true
            #expect(events.map(\.seq) == Array(1...Int64(total)))
            #expect(events.allSatisfy { seen[$0.seq] == $0.id })
        }
        let log = try await nodes[0].verifyLog()
        #expect(log.ok, "\(String(describing: log.problem))")
        let projection = try await nodes[1].verifyProjections()
        #expect(projection.ok, "\(projection.mismatches)")
    }

    @Test func aNodeHearsOfAnotherNodesCommits() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let writer = try await EngineStore.openPostgres(url, blockTargetBytes: 4_096)
        let listener = try await EngineStore.openPostgres(url, blockTargetBytes: 4_096)
        defer {
            writer.close()
            listener.close()
        }
        let heard = Atomic<Int>(0)
        listener.onLogAdvanced { heard.add(1, ordering: .relaxed) }
        // The listener tells once when it starts listening; wait for that, then append.
        try await poll("the listener starts") { heard.load(ordering: .relaxed) > 0 }
        let before = heard.load(ordering: .relaxed)
        _ = try await writer.append([created("alice", "n-1")])
        try await poll("the commit is heard") { heard.load(ordering: .relaxed) > before }
        #expect(try await listener.headSeq() == 1)
    }

    @Test func theLogRefusesUpdatesDeletesAndTruncation() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.makeDatabase()
        let store = try await EngineStore.openPostgres(url, blockTargetBytes: 4_096)
        defer { store.close() }
        _ = try await store.append([created("alice", "n-1"), created("alice", "n-2")])
        let database = try #require(URLComponents(string: url)?.path.dropFirst()).description
        for statement in [
            "UPDATE tidings_blocks SET payload = '\\x00'", "DELETE FROM tidings_blocks", "TRUNCATE tidings_blocks",
        ] {
            #expect(throws: (any Error).self) { try cluster.psql(statement, database: database) }
        }
        let log = try await store.verifyLog()
        #expect(log.ok)
        #expect(log.events == 2)
    }

    @Test func verifyNamesTheEventOfADamagedBlock() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.makeDatabase()
        let store = try await EngineStore.openPostgres(url, blockTargetBytes: 64)
        defer { store.close() }
        for index in 0..<20 { _ = try await store.append([created("alice", "n-\(index)")]) }
        let before = try await store.verifyLog()
        #expect(before.ok)
        let database = try #require(URLComponents(string: url)?.path.dropFirst()).description
        // An operator with superuser rights can still change a block: verify must see it.
        let first = try cluster.psql(
            "SELECT first_seq FROM tidings_blocks ORDER BY first_seq OFFSET 3 LIMIT 1", database: database
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        try cluster.psql(
            """
            ALTER TABLE tidings_blocks DISABLE TRIGGER tidings_blocks_append_only;
            UPDATE tidings_blocks SET checks = set_byte(checks, 0, (get_byte(checks, 0) + 1) % 256)
                WHERE first_seq = \(first);
            """, database: database)
        let after = try await store.verifyLog()
        #expect(!after.ok)
        #expect(after.firstBadSeq == Int64(first))
        #expect(after.problem == "event \(first) does not match the hash chain")
    }

    /// A store a node of schema 1 left (unread as a bool, no kinds, one count) is upgraded in
    /// place by the first node of schema 2, which then rebuilds the projection from the log, so
    /// the kind filters of bulk events see the notifications created before the upgrade.
    @Test func aStoreOfSchemaOneIsUpgradedInPlace() async throws {
        let cluster = try PostgresCluster.shared()
        let url = try cluster.makeDatabase()
        let database = try #require(URLComponents(string: url)?.path.dropFirst()).description
        var store = try await EngineStore.openPostgres(url, blockTargetBytes: 256)
        _ = try await store.append(
            (1...6).map { created("alice", "n-\($0)", kind: $0 % 2 == 0 ? "build.failed" : "mention") }
                + [created("bob", "n-1")])
        _ = try await store.markRead(userID: "alice", notificationIDs: ["n-1", "n-2"])
        let before = try await store.notifications(userID: "alice", before: nil, filter: .init(), limit: 10)
        store.close()
        // Schema 1, as its statements made it, with what the log says in its columns.
        _ = try cluster.psql(
            """
            ALTER TABLE tidings_notifications ADD COLUMN unread bool NOT NULL DEFAULT false;
            UPDATE tidings_notifications SET unread = flags & 1 <> 0;
            ALTER TABLE tidings_notifications DROP COLUMN flags, DROP COLUMN snoozed_until, DROP COLUMN kind;
            CREATE INDEX tidings_notifications_unread ON tidings_notifications (user_no, created_seq) WHERE unread;
            ALTER TABLE tidings_users DROP COLUMN unseen, DROP COLUMN archived;
            ALTER TABLE tidings_user_events DROP COLUMN unseen_after, DROP COLUMN archived_after;
            UPDATE tidings_head SET schema_version = 1;
            """, database: database)

        store = try await EngineStore.openPostgres(url, blockTargetBytes: 256)
        defer { store.close() }
        let version = try cluster.psql("SELECT schema_version FROM tidings_head", database: database)
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        let after = try await store.notifications(userID: "alice", before: nil, filter: .init(), limit: 10)
        #expect(after.notifications == before.notifications)
        #expect(after.counts == InboxCounts(unread: 4, unseen: 4, archived: 0))
        #expect(
            try await store.counts(userID: "alice", atStreamSeq: 7) == InboxCounts(unread: 5, unseen: 5, archived: 0))
        // A kind filter reaches notifications created before the upgrade.
        let archived = try await store.mark(
            userID: "alice", StateChange(.archive, .all(upToSeq: nil, kind: "build.failed", onlyRead: false)))
        #expect(archived.read == ["n-2", "n-4", "n-6"])
        #expect(archived.counts == InboxCounts(unread: 2, unseen: 2, archived: 3))
        let verification = try await store.verifyProjections()
        #expect(verification.ok, "\(verification.mismatches)")
    }

    @Test func anOnlineRebuildKeepsEveryAppendMadeWhileItRuns() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let store = try await EngineStore.openPostgres(url, blockTargetBytes: 256)
        let other = try await EngineStore.openPostgres(url, blockTargetBytes: 256)
        defer {
            store.close()
            other.close()
        }
        var batch: [NewEvent] = []
        for index in 0..<3_000 {
            batch.append(created("user-\(index % 40)", "n-\(index)", id: "e-\(index)"))
            if index % 7 == 0 { batch.append(read("user-\(index % 40)", "n-\(index)")) }
        }
        for start in stride(from: 0, to: batch.count, by: 1_000) {
            _ = try await store.append(Array(batch[start..<min(start + 1_000, batch.count)]))
        }
        let appending = Task {
            var count = 0
            while !Task.isCancelled && count < 400 {
                _ = try await other.append([created("late-\(count % 9)", "late-\(count)")])
                if count % 5 == 0 { _ = try await other.markAllRead(userID: "user-\(count % 40)", upToSeq: nil) }
                count += 1
            }
            return count
        }
        try await store.rebuildProjections()
        appending.cancel()
        _ = try await appending.value
        let verification = try await store.verifyProjections()
        #expect(verification.ok, "\(verification.mismatches)")
        #expect(try await store.unread(userID: "user-0", limit: 10).unreadCount == 0)
        // A second rebuild finds its table names free.
        try await other.rebuildProjections()
        #expect(try await store.verifyProjections().ok)
        // Idempotency survives the rebuild.
        let retry = try await store.append([created("user-0", "n-0", id: "e-0")])
        #expect(retry[0].status == .duplicate)
    }

    @Test func exportMatchesTheAllStreamEnvelopeForEnvelope() async throws {
        let temporary = try await EngineStore.make(.postgres, blockTargetBytes: 128)
        let store = temporary.store
        for index in 0..<300 {
            _ = try await store.append([created("u\(index % 6)", "n\(index)", id: index % 3 == 0 ? "x\(index)" : nil)])
        }
        var exported: [UInt8] = []
        let count = try await store.exportNDJSON(after: store.unanchoredAllCursor(seq: 17)) { chunk, _ in
            exported += chunk
            return true
        }
        var expected: [UInt8] = []
        var cursor = store.unanchoredAllCursor(seq: 17)
        while true {
            let page = try await store.allEvents(after: cursor, filter: EventFilter(), limit: 50)
            for event in page.events {
                expected += EnvelopeJSON.encode(event, cursor: store.cursor(of: event, userStream: false))
                expected.append(UInt8(ascii: "\n"))
            }
            cursor = page.nextCursor
            if !page.hasMore { break }
        }
        #expect(count == 283)
        #expect(exported == expected)
        // With filters the export keeps what the page reads keep, across fetches of blocks.
        for index in stride(from: 0, to: 300, by: 4) {
            _ = try await store.append([
                NewEvent(type: .read, userID: "u\(index % 6)", data: #"{"notification_id":"n\#(index)"}"#)
            ])
        }
        let all = try await store.allEvents(after: nil, filter: EventFilter(), limit: 1_000).events
        let (since, until) = (all[99].timestampMilliseconds, all[300].timestampMilliseconds)
        for filter in [
            EventFilter(types: [.read]), EventFilter(since: since), EventFilter(until: until),
            EventFilter(types: [.created], since: since, until: until),
        ] {
            var exported: [UInt8] = []
            _ = try await store.exportNDJSON(after: nil, filter: filter) { chunk, _ in
                exported += chunk
                return true
            }
            let page = try await store.allEvents(after: nil, filter: filter, limit: 1_000)
            var expected: [UInt8] = []
            for event in page.events {
                expected += EnvelopeJSON.encode(event, cursor: store.cursor(of: event, userStream: false))
                expected.append(UInt8(ascii: "\n"))
            }
            #expect(!page.events.isEmpty && exported == expected, "\(filter)")
        }
        // Filters: one user, one type.
        let page = try await store.allEvents(
            after: nil, filter: EventFilter(types: [.created], userID: "u2"), limit: 1_000)
        #expect(page.events.count == 50)
        #expect(page.events.allSatisfy { $0.userID == "u2" })
    }

    @Test func aBadURLIsAClearError() throws {
        #expect(throws: PostgresLocationError.self) { try PostgresLocation("mysql://x@y/z") }
        #expect(throws: PostgresLocationError.self) { try PostgresLocation("postgres://host/db") }
        #expect(throws: PostgresLocationError.self) { try PostgresLocation("postgres://u@host/") }
        let location = try PostgresLocation("postgres://u:secret@a:5433/db,postgres://u:secret@b/db?sslmode=disable")
        #expect(location.servers.map(\.host) == ["a", "b"])
        #expect(location.servers.map(\.port) == [5433, 5432])
        #expect(!location.description.contains("secret"))
    }

    @Test func noPrimaryIsUnavailableNotAHang() async throws {
        let port = try FreePort.find()
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) {
            _ = try await PostgresStore.open(try PostgresLocation("postgres://u@127.0.0.1:\(port)/db?sslmode=disable"))
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}

/// Appends acknowledged to concurrent workers: seq to event id.
final class Acknowledged: Sendable {
    let seqs = Mutex<[Int64: String]>([:])
}

/// Polls `condition` until it holds, failing after `seconds`.
func poll(_ what: String, seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting until \(what)")
    throw CancellationError()
}
