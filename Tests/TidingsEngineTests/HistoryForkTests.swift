import Testing
import TidingsStore
import TidingsTestSupport

/// A failover to a standby that had not received the last commits: the log's history forks.
/// The standby holds the primary's history up to seq 5 and then grows its own, handing the lost
/// seqs to other events. A cursor made in the lost history is reset, never resumed in the new
/// one, even once the new history has grown past its position; cursors of the shared history
/// resume exactly.
@Suite struct HistoryForkTests {
    @Test(arguments: Engine.allCases) func cursorsFromALostHistoryAreResetOnEveryRead(engine: Engine) async throws {
        let primary = try await EngineStore.make(engine)
        _ = try await primary.store.append(
            [
                created("alice", "n-1"), created("alice", "n-2"), created("alice", "n-3"), created("bob", "b-1"),
                created("bob", "b-2"),
            ])
        let sharedAll = try await primary.store.allEvents(after: nil).nextCursor
        let sharedAlice = try await primary.store.userEvents(userID: "alice", after: nil).nextCursor
        let standby = try await primary.forkedCopy()
        #expect(standby.store.epoch == primary.store.epoch)

        // Commits clients of the primary saw, which never reached the standby.
        _ = try await primary.store.append([created("alice", "n-4"), created("alice", "n-5"), created("carol", "c-1")])
        let lostAll = try await primary.store.allEvents(after: sharedAll).nextCursor
        let lostAlice = try await primary.store.userEvents(userID: "alice", after: sharedAlice).nextCursor
        let lostBob = try await primary.store.userEvents(userID: "bob", after: nil).nextCursor

        // Before the standby's history grows, the lost positions are past its head.
        await expectReset(.cursorAhead) { _ = try await standby.store.allEvents(after: lostAll) }
        await expectReset(.cursorAhead) { _ = try await standby.store.userEvents(userID: "alice", after: lostAlice) }
        // Bob's own events all survived, but his cursor was made after the lost commits.
        await expectReset(.historyForked) { _ = try await standby.store.userEvents(userID: "bob", after: lostBob) }

        // The standby takes over and its history grows past every lost position.
        _ = try await standby.store.append(
            [created("dave", "d-1"), created("alice", "x-4"), created("alice", "x-5"), created("erin", "e-1")])
        await expectReset(.historyForked) { _ = try await standby.store.allEvents(after: lostAll) }
        await expectReset(.historyForked) {
            _ = try await standby.store.userEvents(userID: "alice", after: lostAlice)
        }
        await expectReset(.historyForked) { _ = try await standby.store.export(after: lostAll) }
        let streamStart = try await standby.store.startUserStream(userID: "alice", cursor: lostAlice)
        #expect(streamStart.position == nil)
        #expect(streamStart.resetReason == .historyForked)
        #expect(streamStart.head == 5)
        let allStart = try await standby.store.startAllStream(cursor: lostAll)
        #expect(allStart.resetReason == .historyForked)
        #expect(allStart.head == 9)

        // The shared history resumes exactly, on the standby's new events.
        let alice = try await standby.store.userEvents(userID: "alice", after: sharedAlice)
        #expect(alice.events.map(\.dataText).map { $0.contains("x-4") || $0.contains("x-5") } == [true, true])
        let all = try await standby.store.allEvents(after: sharedAll)
        #expect(all.events.map(\.seq) == [6, 7, 8, 9])
        #expect(all.events.map(\.userID) == ["dave", "alice", "alice", "erin"])
        // A cursor made on the standby resumes there.
        let next = try await standby.store.userEvents(userID: "alice", after: alice.nextCursor)
        #expect(next.events.isEmpty)
        #expect(Cursor.samePosition(next.nextCursor, alice.nextCursor))
        // On the old primary, where the lost history still is, its cursors resume as before.
        let onPrimary = try await primary.store.userEvents(userID: "alice", after: lostAlice)
        #expect(onPrimary.events.isEmpty)
    }

    /// Cursors anchored at every seq of a log resume on that log, in the tail and in sealed blocks:
    /// the check bytes a cursor carries are the ones the log keeps.
    @Test(arguments: Engine.allCases) func cursorsAnchoredAnywhereInTheLogResume(engine: Engine) async throws {
        let store = try await EngineStore.make(engine, blockTargetBytes: 512)
        var cursors: [(seq: Int64, cursor: String)] = []
        for index in 1...60 {
            let results = try await store.store.append([created("u\(index % 4)", "n-\(index)")])
            let event = try #require(results.first?.event)
            cursors.append((event.seq, store.store.cursor(of: event, userStream: false)))
        }
        for (seq, cursor) in cursors {
            let page = try await store.store.allEvents(after: cursor, filter: EventFilter(), limit: 1_000)
            #expect(page.events.first?.seq == (seq < 60 ? seq + 1 : nil))
        }
        // One changed check byte is a forked history, not another position.
        let tampered = try Cursor.parse(cursors[10].cursor)
        let anchor = try #require(tampered.anchor)
        let forged = Cursor(
            epoch: tampered.epoch, stream: tampered.stream, position: tampered.position,
            anchor: CursorAnchor(seq: anchor.seq, check: anchor.check ^ 1)
        ).text
        await expectReset(.historyForked) { _ = try await store.store.allEvents(after: forged) }
    }

    private func expectReset(
        _ reason: StoreError.ResetReason, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected a reset (\(reason)), got an answer", sourceLocation: sourceLocation)
        } catch let error as StoreError {
            #expect(error.code == .cursorReset, sourceLocation: sourceLocation)
            #expect(error.resetReason == reason, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a reset (\(reason)), got \(error)", sourceLocation: sourceLocation)
        }
    }
}
