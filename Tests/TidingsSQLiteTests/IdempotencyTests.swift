import Testing

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct IdempotencyTests {
    @Test func retryWithSameIDIsADuplicateReturningTheOriginal() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let first = try await store.append([created("alice", "n-1", id: "evt-1")])
        let retry = try await store.append([
            NewEvent(
                type: .created, userID: "alice", id: "evt-1", data: #"{ "title" : "Hello", "notification_id":"n-1" }"#)
        ])
        #expect(retry[0].status == .duplicate)
        #expect(retry[0].event?.seq == first[0].event?.seq)
        #expect(retry[0].event?.dataText == first[0].event?.dataText)
        #expect(try await store.headSeq() == 1)
        // Still a duplicate after a restart: idempotency is permanent.
        try await temporary.reopen()
        let later = try await temporary.store.append([created("alice", "n-1", id: "evt-1")])
        #expect(later[0].status == .duplicate)
    }

    @Test func sameIDWithDifferentContentIsAConflict() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1", id: "evt-1")])
        for other in [
            created("alice", "n-1", id: "evt-1", title: "Other"), created("bob", "n-1", id: "evt-1"),
            read("alice", "n-1", id: "evt-1"),
        ] {
            let error = await expectStoreError(.conflict) {
                _ = try await store.append([created("alice", "n-9"), other])
            }
            #expect(error?.index == 1)
            #expect(error?.message == "id evt-1 already names a different event (seq 1)")
        }
        #expect(try await store.headSeq() == 1)
    }

    @Test func duplicateEarlierInTheSameBatch() async throws {
        let temporary = try await TemporaryStore()
        let results = try await temporary.store.append([
            created("alice", "n-1", id: "a"), created("alice", "n-1", id: "a"),
        ])
        #expect(results.map(\.status) == [.appended, .duplicate])
        #expect(results[1].event?.seq == 1)
    }

    @Test func noopRecordsNothingNotEvenTheID() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let noop = try await store.append([read("alice", "unknown", id: "r-1")])
        #expect(noop[0].status == .noop)
        #expect(noop[0].event == nil)
        // The id is free: the same id on another event appends it.
        let reused = try await store.append([created("alice", "n-1", id: "r-1")])
        #expect(reused[0].status == .appended)
    }

    @Test func readAndReadAllNoops() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1"), created("alice", "n-2")])
        let results = try await store.append([read("alice", "n-1"), read("alice", "n-1"), read("bob", "n-2")])
        #expect(results.map(\.status) == [.appended, .noop, .noop])
        let all = try await store.append([readAll("alice", upTo: 1)])
        #expect(all[0].status == .noop)
        let rest = try await store.append([readAll("alice")])
        #expect(rest[0].status == .appended)
        #expect(rest[0].event?.unreadCount == 0)
        #expect(try await store.append([readAll("alice")])[0].status == .noop)
    }

    @Test func createdTwiceIsAConflictAndNotificationsAreScopedPerUser() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1")])
        let error = await expectStoreError(.conflict) { _ = try await store.append([created("alice", "n-1")]) }
        #expect(error?.message == "the user already has a notification with this notification_id")
        #expect(error?.index == 0)
        // Another user's n-1 is another notification; a read by bob of alice's n-1 is a noop.
        #expect(try await store.append([created("bob", "n-1")])[0].status == .appended)
        _ = try await store.append([read("bob", "n-1")])
        #expect(try await store.unread(userID: "alice").unreadCount == 1)
        #expect(try await store.unread(userID: "bob").unreadCount == 0)
    }

    @Test func serverAssignedIDsAreUniqueAndRecognisedOnRetry() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let results = try await store.append([created("alice", "n-1"), created("alice", "n-2")])
        let ids = results.map { $0.event!.id }
        #expect(Set(ids).count == 2)
        #expect(ids.allSatisfy { $0.count == 36 })
        // A client may retry with an id the server assigned: it names that event.
        let retry = try await store.append([created("alice", "n-1", id: ids[0])])
        #expect(retry[0].status == .duplicate)
        #expect(retry[0].event?.seq == 1)
        // It may not claim one for an event of its own (the store would assign it later).
        let derived = DerivedEventID(epoch: store.epoch)
        let future = String(decoding: derived.text(seq: 99), as: UTF8.self)
        let error = await expectStoreError(.conflict) {
            _ = try await store.append([created("alice", "n-3", id: future)])
        }
        #expect(error?.message.contains("has the form of ids this store assigns") == true)
    }

    @Test func failingEventFailsTheWholeBatch() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1")])
        await expectStoreError(.conflict) {
            _ = try await store.append([
                created("alice", "n-2", id: "x"), read("alice", "n-1"), created("alice", "n-1"),
            ])
        }
        #expect(try await store.headSeq() == 1)
        #expect(try await store.unread(userID: "alice").unreadCount == 1)
        // Nothing of the failed batch was recorded: its id is free, n-2 is unknown.
        #expect(try await store.append([created("alice", "n-2", id: "x")])[0].status == .appended)
    }
}
