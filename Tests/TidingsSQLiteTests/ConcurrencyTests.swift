import Testing

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct ConcurrencyTests {
    @Test func concurrentAppendersGetUniqueGaplessSeqs() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let tasks = 48
        let perTask = 40
        let seqs = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var seqs: [Int64] = []
                    for index in 0..<perTask {
                        let results = try await store.append([created("user-\(index % 5)", "t\(task)-\(index)")])
                        seqs.append(results[0].event!.seq)
                        if index % 10 == 9 {
                            _ = try await store.markRead(
                                userID: "user-\(index % 5)", notificationIDs: ["t\(task)-\(index)"])
                        }
                    }
                    return seqs
                }
            }
            var all: [Int64] = []
            for try await seqs in group { all += seqs }
            return all
        }
        #expect(seqs.count == tasks * perTask)
        #expect(Set(seqs).count == seqs.count)
        let head = try await store.headSeq()
        #expect(head == Int64(tasks * perTask + tasks * perTask / 10))
        var streamSeqs: [String: Int64] = [:]
        for event in try await store.allEventsForTests() {
            streamSeqs[event.userID, default: 0] += 1
            #expect(event.streamSeq == streamSeqs[event.userID])
        }
        #expect(try await store.verifyLog().ok)
        #expect(try await store.verifyProjections().ok)
    }

    @Test func readersDuringWritesSeeConsistentPages() async throws {
        var options = StoreOptions()
        options.checkpointEvents = 64
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for index in 0..<600 { _ = try await store.append([created("alice", "n-\(index)")]) }
            }
            for _ in 0..<3 {
                group.addTask {
                    for _ in 0..<150 {
                        let page = try await store.userEvents(userID: "alice", after: nil, limit: 1000)
                        // Every page is a prefix of the stream with counts that agree with it.
                        for (index, event) in page.events.enumerated() {
                            #expect(event.streamSeq == Int64(index + 1))
                            #expect(event.unreadCount == Int64(index + 1))
                        }
                        let unread = try await store.unread(userID: "alice", limit: 1000)
                        #expect(unread.unreadCount >= Int64(page.events.count))
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
