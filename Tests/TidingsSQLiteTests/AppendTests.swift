import Testing

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct AppendTests {
    @Test func appendThenReadBack() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let results = try await store.append([created("alice", "n-1"), created("alice", "n-2"), created("bob", "n-1")])
        #expect(results.map(\.status) == [.appended, .appended, .appended])
        #expect(results.map { $0.event!.seq } == [1, 2, 3])
        #expect(results.map { $0.event!.streamSeq } == [1, 2, 1])
        #expect(results.map { $0.event!.unreadCount } == [1, 2, 1])
        let page = try await store.userEvents(userID: "alice", after: nil)
        #expect(page.events.map(\.seq) == [1, 2])
        #expect(page.events[0].dataText == #"{"notification_id":"n-1","title":"Hello"}"#)
        #expect(!page.hasMore)
        let unread = try await store.unread(userID: "alice")
        #expect(unread.unreadCount == 2)
        #expect(unread.notifications.map(\.seq) == [1, 2])
    }
}
