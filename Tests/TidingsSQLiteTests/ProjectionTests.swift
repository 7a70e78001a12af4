import Foundation
import Testing

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct ProjectionTests {
    @Test func markReadReportsWhatChangedInRequestOrder() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1"), created("alice", "n-2"), created("alice", "n-3")])
        let outcome = try await store.markRead(userID: "alice", notificationIDs: ["n-3", "unknown", "n-1", "n-3"])
        #expect(outcome.read == ["n-3", "n-1"])
        #expect(outcome.unreadCount == 1)
        #expect(Cursor.samePosition(outcome.cursor, store.unanchoredUserCursor("alice", streamSeq: 5)))
        let again = try await store.markRead(userID: "alice", notificationIDs: ["n-1"])
        #expect(again.read == [])
        #expect(again.unreadCount == 1)
        #expect(Cursor.samePosition(again.cursor, store.unanchoredUserCursor("alice", streamSeq: 5)))
        let unread = try await store.unread(userID: "alice")
        #expect(unread.notifications.map(\.seq) == [2])
    }

    /// A second process on the same files replays every state event from the log into its own
    /// overlay and answers as the process that appended them.
    @Test func anotherProcessSeesEveryStateAsTheWriterDoes() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let other = try await SQLiteStore.open(directory: temporary.directory)
        defer { other.close() }
        _ = try await store.append((1...4).map { created("alice", "n-\($0)") })
        let changes: [StateChange] = [
            StateChange(.seen, .notifications(["n-1"])), StateChange(.archive, .notifications(["n-2"])),
            StateChange(.snooze, .notifications(["n-3"]), until: 4_102_444_800_000),
            StateChange(.read, .notifications(["n-4"])), StateChange(.unread, .notifications(["n-4"])),
            StateChange(.archive, .all(upToSeq: nil, kind: nil, onlyRead: false)),
            StateChange(.unarchive, .notifications(["n-1"])), StateChange(.unsnooze, .notifications(["n-3"])),
        ]
        for change in changes {
            let outcome = try await store.mark(userID: "alice", change)
            #expect(!outcome.read.isEmpty, "\(change)")
            let seen = try await other.userHead(userID: "alice")
            #expect(seen.counts == outcome.counts, "\(change)")
            #expect(seen.streamSeq == outcome.headStreamSeq, "\(change)")
            for state in NotificationListFilter.State.allCases {
                var filter = NotificationListFilter()
                filter.state = state
                let mine = try await store.notifications(userID: "alice", before: nil, filter: filter, limit: 10)
                let theirs = try await other.notifications(userID: "alice", before: nil, filter: filter, limit: 10)
                #expect(theirs.notifications == mine.notifications, "\(change), \(state)")
            }
        }
    }

    /// The sweeper's read: snoozes due, soonest first; those it ended are passed over while the
    /// base table still lists them (until the next checkpoint), however many there are.
    @Test func dueSnoozesPassOverTheOnesAlreadyEnded() async throws {
        let temporary = try await TemporaryStore()
        _ = try await temporary.store.append((1...3).map { created("alice", "n-\($0)") })
        for (index, second) in [(1, "03"), (2, "01"), (3, "02")] {
            let until = Timestamp.parse("2099-01-01T09:00:\(second)Z")!
            _ = try await temporary.store.mark(
                userID: "alice", StateChange(.snooze, .notifications(["n-\(index)"]), until: until))
        }
        try await temporary.reopen()  // a checkpoint: the snoozes are in the base table
        let store = temporary.store!
        let now = Timestamp.parse("2100-01-01T00:00:00Z")!
        let first = try await store.dueSnoozes(asOf: now, limit: 2)
        #expect(first.map(\.notificationID) == ["n-2", "n-3"])
        #expect(first[0].unsnoozeEvent.id == "tidings:unsnooze:2:\(Timestamp.parse("2099-01-01T09:00:01Z")!)")
        let ended = try await store.append(first.map(\.unsnoozeEvent))
        #expect(ended.map(\.status) == [.appended, .appended])
        let again = try await store.append(first.map(\.unsnoozeEvent))
        #expect(again.map(\.status) == [.duplicate, .duplicate])
        let second = try await store.dueSnoozes(asOf: now, limit: 2)
        #expect(second.map(\.notificationID) == ["n-1"])
        _ = try await store.append(second.map(\.unsnoozeEvent))
        #expect(try await store.dueSnoozes(asOf: now, limit: 2).isEmpty)
        #expect(try await store.userHead(userID: "alice").counts == InboxCounts(unread: 3, unseen: 3, archived: 0))
        #expect(try await store.dueSnoozes(asOf: Timestamp.parse("2099-01-01T09:00:00Z")!, limit: 10).isEmpty)
    }

    @Test func markAllReadListsWhatItMarkedOldestFirst() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append((1...5).map { created("alice", "n-\($0)") })
        _ = try await store.markRead(userID: "alice", notificationIDs: ["n-2"])
        let upTo = try await store.markAllRead(userID: "alice", upToSeq: 4)
        #expect(upTo.read == ["n-1", "n-3", "n-4"])
        #expect(upTo.unreadCount == 1)
        let rest = try await store.markAllRead(userID: "alice", upToSeq: nil)
        #expect(rest.read == ["n-5"])
        #expect(rest.unreadCount == 0)
        let nothing = try await store.markAllRead(userID: "alice", upToSeq: nil)
        #expect(nothing.read == [])
        #expect(Cursor.samePosition(nothing.cursor, store.unanchoredUserCursor("alice", streamSeq: 8)))
        // A read_all never marks notifications created after it, whatever up_to_seq says.
        _ = try await store.append([readAll("bob", upTo: 1000)])
        _ = try await store.append([created("bob", "later")])
        #expect(try await store.unread(userID: "bob").unreadCount == 1)
    }

    @Test func unreadCountAsOfEveryPositionOfTheStream() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([
            created("alice", "a"), created("alice", "b"), read("alice", "a"), created("alice", "c"),
        ])
        _ = try await store.append([readAll("alice")])
        var counts: [Int64] = []
        for position in 0...5 {
            counts.append(try await store.counts(userID: "alice", atStreamSeq: Int64(position)).unread)
        }
        #expect(counts == [0, 1, 2, 1, 2, 0])
        await expectStoreError(.cursorReset) { _ = try await store.counts(userID: "alice", atStreamSeq: 6) }
    }

    @Test func timestampsNeverGoBackwardsWhenTheClockDoes() async throws {
        let clock = ClockBox(2_000_000_000_000)
        var options = StoreOptions()
        options.clock = { clock.now() }
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        _ = try await store.append([created("alice", "a")])
        clock.set(1_000_000_000_000)
        let later = try await store.append([created("alice", "b")])
        #expect(later[0].event?.timestampMilliseconds == 2_000_000_000_000)
        try await temporary.reopen(options: options)
        let afterRestart = try await temporary.store.append([created("alice", "c")])
        #expect(afterRestart[0].event?.timestampMilliseconds == 2_000_000_000_000)
        #expect(afterRestart[0].event?.seq == 3)
        #expect(try await temporary.store.verifyLog().ok)
    }

    @Test func rebuildWhileAppendingChangesNoCount() async throws {
        var options = StoreOptions()
        options.checkpointEvents = 50
        options.blockTargetBytes = 512
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        for batch in 0..<20 {
            _ = try await store.append((0..<25).map { created("user-\($0 % 7)", "n-\(batch)-\($0)") })
            _ = try await store.markRead(userID: "user-\(batch % 7)", notificationIDs: ["n-\(batch)-\(batch % 7)"])
        }
        async let rebuild: Void = store.rebuildProjections()
        var counts: [String: Int64] = [:]
        for round in 0..<30 {
            let user = "user-\(round % 7)"
            _ = try await store.append([created(user, "late-\(round)")])
            if round % 4 == 0 { _ = try await store.markAllRead(userID: user, upToSeq: nil) }
        }
        try await rebuild
        for user in (0..<7).map({ "user-\($0)" }) { counts[user] = try await store.unread(userID: user).unreadCount }
        let verification = try await store.verifyProjections()
        #expect(verification.ok, "\(verification.mismatches)")
        #expect(verification.usersChecked == 7)
        try await temporary.reopen(options: options)
        for (user, count) in counts { #expect(try await temporary.store.unread(userID: user).unreadCount == count) }
    }

    @Test func verifyFindsADamagedProjection() async throws {
        let temporary = try await TemporaryStore()
        _ = try await temporary.store.append([created("alice", "a"), created("alice", "b"), created("bob", "c")])
        temporary.store.close()
        try withDatabase(temporary.databasePath) { database in
            try database.execute("DELETE FROM states WHERE created_seq = 2")
        }
        try await temporary.reopen()
        let verification = try await temporary.store.verifyProjections()
        #expect(!verification.ok)
        #expect(verification.mismatches.contains { $0.userID == "alice" && $0.field == "unread" })
        try await temporary.store.rebuildProjections()
        #expect(try await temporary.store.verifyProjections().ok)
        #expect(try await temporary.store.unread(userID: "alice").unreadCount == 2)
    }

    @Test func aStoreOfSchemaTwoIsMigratedAndRebuiltOnOpen() async throws {
        let temporary = try await TemporaryStore()
        _ = try await temporary.store.append([
            created("alice", "a"), created("alice", "b"), read("alice", "a"), created("bob", "c"),
        ])
        temporary.store.close()
        // Schema 2 kept the unread set in its own table and one count in each stream entry.
        try withDatabase(temporary.databasePath) { database in
            try database.execute("DROP TABLE states")
            try database.execute(
                "CREATE TABLE unread (user_no INTEGER NOT NULL, created_seq INTEGER NOT NULL, PRIMARY KEY (user_no, created_seq)) STRICT, WITHOUT ROWID"
            )
            try database.execute("INSERT INTO unread VALUES (1, 2), (2, 4)")
            try database.execute("DELETE FROM user_events")
            try database.execute("INSERT INTO user_events VALUES (1, 1, x'0101010102'), (2, 1, x'0401')")
            try database.execute("UPDATE meta SET value = 1 WHERE key = 'projection_version'")
            try database.execute("PRAGMA user_version = 2")
        }
        try await temporary.reopen()
        let alice = try await temporary.store.unread(userID: "alice")
        #expect(alice.notifications.map(\.seq) == [2])
        #expect(alice.counts == InboxCounts(unread: 1, unseen: 1))
        #expect(
            try await temporary.store.userEvents(userID: "alice", after: nil).events.map(\.counts) == [
                InboxCounts(unread: 1, unseen: 1), InboxCounts(unread: 2, unseen: 2), InboxCounts(unread: 1, unseen: 1),
            ])
        #expect(try await temporary.store.verifyProjections().ok)
    }

    @Test func aNewProjectionVersionRebuildsOnOpen() async throws {
        let temporary = try await TemporaryStore()
        _ = try await temporary.store.append([created("alice", "a"), created("alice", "b"), read("alice", "a")])
        temporary.store.close()
        try withDatabase(temporary.databasePath) { database in
            try database.execute("UPDATE meta SET value = 0 WHERE key = 'projection_version'")
            try database.execute("DELETE FROM states")
            try database.execute("DELETE FROM user_events")
        }
        try await temporary.reopen()
        #expect(try await temporary.store.unread(userID: "alice").notifications.map(\.seq) == [2])
        #expect(try await temporary.store.userEvents(userID: "alice", after: nil).events.count == 3)
        try withDatabase(temporary.databasePath) { database in
            let statement = try database.prepare("SELECT value FROM meta WHERE key = 'projection_version'")
            _ = try statement.step()
            #expect(statement.int(0) == SQLiteStore.projectionVersion)
        }
    }

    @Test func onlineRebuildJobReportsItsState() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        #expect(store.rebuildJob == nil)
        _ = try await store.append((1...100).map { created("alice", "n-\($0)") })
        let started = try store.startProjectionRebuild()
        #expect(started.state == .running)
        var job = store.rebuildJob
        for _ in 0..<500 where job?.state == .running {
            try await Task.sleep(for: .milliseconds(10))
            job = store.rebuildJob
        }
        #expect(job?.state == .done)
        #expect(job?.phase == .swapping)
        #expect(job?.processed == 100)
        #expect(job?.total == 100)
        #expect(job?.finishedAt != nil)
    }
}

/// Opens the database file directly, as an operator (or an attacker) could, for damage tests.
func withDatabase(_ path: String, _ body: (Database) throws -> Void) throws {
    let database = try Database(path: path, mode: .readWrite)
    defer { database.close() }
    try body(database)
}
