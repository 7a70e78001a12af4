import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct CursorTests {
    @Test func cursorRoundTripsAndStaysInTheAlphabet() throws {
        var random = SeededGenerator(seed: 3)
        for _ in 0..<2_000 {
            let position = Int64(random.next() >> 2)
            // Version 2 cursors carry an anchor; version 1 cursors (nil) still read back.
            let anchor =
                random.next() % 4 == 0
                ? nil
                : CursorAnchor(
                    seq: position + Int64(random.next() % 1_000), check: UInt32(truncatingIfNeeded: random.next()))
            let cursor: Cursor =
                random.next() % 2 == 0
                ? .all(epoch: random.next(), seq: position, anchor: anchor)
                : .user("user-\(random.next() % 1000)", epoch: random.next(), streamSeq: position, anchor: anchor)
            let text = cursor.text
            #expect(text.utf8.count <= Limits.cursorCharactersMax)
            #expect(
                text.utf8.allSatisfy { Identifier.isAllowed($0) && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "@") })
            #expect(try Cursor.parse(text) == cursor)
        }
    }

    @Test func mangledCursorsAreInvalidNeverAnotherPosition() throws {
        var random = SeededGenerator(seed: 4)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".utf8)
        for _ in 0..<5_000 {
            let anchor = CursorAnchor(
                seq: Int64(random.next() % 5000), check: UInt32(truncatingIfNeeded: random.next()))
            let anchored = random.next() % 2 == 0
            var bytes = Array(
                Cursor.user("alice", epoch: 42, streamSeq: Int64(random.next() % 1000), anchor: anchored ? anchor : nil)
                    .text.utf8)
            switch random.next() % 4 {
            case 0:
                bytes[Int(random.next() % UInt64(bytes.count))] = alphabet[Int(random.next() % UInt64(alphabet.count))]
            case 1: bytes.removeLast(Int(random.next() % UInt64(bytes.count)) + 1)
            case 2: bytes.append(alphabet[Int(random.next() % UInt64(alphabet.count))])
            default: bytes.swapAt(Int(random.next() % UInt64(bytes.count)), Int(random.next() % UInt64(bytes.count)))
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard text != Cursor.user("alice", epoch: 42, streamSeq: 0, anchor: nil).text else { continue }
            switch Result(catching: { () throws(StoreError) in try Cursor.parse(text) }) {
            case .success(let parsed):
                // The checksum lets through about one mangled cursor in 2^32; a byte swap of
                // equal characters leaves it unchanged.
                #expect(parsed.text == text)
            case .failure(let error):
                #expect(error.code == .invalidCursor)
            }
        }
        for junk in ["", "x", "not a cursor", String(repeating: "A", count: 300), "AQ", "====", "é"] {
            #expect(throws: StoreError.self) { try Cursor.parse(junk) }
        }
    }

    @Test func userStreamCursorChecksRunInOrder() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1"), created("alice", "n-2"), created("bob", "n-1")])
        // Malformed.
        var error = await expectStoreError(.invalidCursor) {
            _ = try await store.userEvents(userID: "alice", after: "junk")
        }
        #expect(error?.message == "cursor is malformed")
        // Another kind.
        error = await expectStoreError(.invalidCursor) {
            _ = try await store.userEvents(userID: "alice", after: store.unanchoredAllCursor(seq: 1))
        }
        #expect(error?.message == "cursor belongs to the all stream, not a user stream")
        // Another user's.
        error = await expectStoreError(.invalidCursor) {
            _ = try await store.userEvents(userID: "alice", after: store.unanchoredUserCursor("bob", streamSeq: 1))
        }
        #expect(error?.message == "cursor belongs to another user's stream")
        // Another epoch: reset with the head, even when the position would also be ahead.
        let foreign = Cursor.user("alice", epoch: store.epoch &+ 1, streamSeq: 99, anchor: .start).text
        error = await expectStoreError(.cursorReset) { _ = try await store.userEvents(userID: "alice", after: foreign) }
        #expect(error?.resetReason == .epochMismatch)
        #expect(Cursor.samePosition(error?.head, store.unanchoredUserCursor("alice", streamSeq: 2)))
        // Past the head.
        error = await expectStoreError(.cursorReset) {
            _ = try await store.userEvents(userID: "alice", after: store.unanchoredUserCursor("alice", streamSeq: 3))
        }
        #expect(error?.resetReason == .cursorAhead)
        #expect(Cursor.samePosition(error?.head, store.unanchoredUserCursor("alice", streamSeq: 2)))
        // At the head: an empty page whose next cursor is the one given.
        let head = store.unanchoredUserCursor("alice", streamSeq: 2)
        let page = try await store.userEvents(userID: "alice", after: head)
        #expect(page.events.isEmpty)
        #expect(page.nextCursor == head)
        #expect(!page.hasMore)
    }

    @Test func allStreamCursorChecks() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append([created("alice", "n-1")])
        await expectStoreError(.invalidCursor) {
            _ = try await store.allEvents(after: store.unanchoredUserCursor("alice", streamSeq: 1))
        }
        let error = await expectStoreError(.cursorReset) {
            _ = try await store.allEvents(after: store.unanchoredAllCursor(seq: 2))
        }
        #expect(Cursor.samePosition(error?.head, store.unanchoredAllCursor(seq: 1)))
        // A cursor of another store is another epoch.
        let other = try await TemporaryStore()
        await expectStoreError(.cursorReset) {
            _ = try await store.allEvents(after: other.store.unanchoredAllCursor(seq: 0))
        }
    }

    @Test func emptyStreamOfAnUnknownUser() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        let page = try await store.userEvents(userID: "nobody", after: nil)
        #expect(page.events.isEmpty)
        #expect(Cursor.samePosition(page.nextCursor, store.unanchoredUserCursor("nobody", streamSeq: 0)))
        #expect(!page.hasMore)
        let unread = try await store.unread(userID: "nobody")
        #expect(unread.unreadCount == 0)
        #expect(unread.notifications.isEmpty)
        #expect(Cursor.samePosition(unread.cursor, store.unanchoredUserCursor("nobody", streamSeq: 0)))
        await expectStoreError(.cursorReset) {
            _ = try await store.userEvents(userID: "nobody", after: store.unanchoredUserCursor("nobody", streamSeq: 1))
        }
    }

    @Test func pagesAndHasMore() async throws {
        let temporary = try await TemporaryStore()
        let store = temporary.store!
        _ = try await store.append((1...5).map { created("alice", "n-\($0)") })
        let first = try await store.userEvents(userID: "alice", after: nil, limit: 2)
        #expect(first.events.map(\.streamSeq) == [1, 2])
        #expect(first.hasMore)
        #expect(Cursor.samePosition(first.nextCursor, store.unanchoredUserCursor("alice", streamSeq: 2)))
        let last = try await store.userEvents(
            userID: "alice", after: store.unanchoredUserCursor("alice", streamSeq: 3), limit: 2)
        #expect(last.events.map(\.streamSeq) == [4, 5])
        #expect(!last.hasMore)
        await expectStoreError(.badRequest) { _ = try await store.userEvents(userID: "alice", after: nil, limit: 0) }
        await expectStoreError(.badRequest) { _ = try await store.userEvents(userID: "alice", after: nil, limit: 1001) }
        await expectStoreError(.badRequest) { _ = try await store.userEvents(userID: "a b", after: nil) }
    }

    @Test func allStreamFilters() async throws {
        var now: Int64 = 1_000_000
        var options = StoreOptions()
        options.blockTargetBytes = 100
        let clock = ClockBox(1_000_000)
        options.clock = { clock.now() }
        let temporary = try await TemporaryStore(options: options)
        let store = temporary.store!
        for index in 1...30 {
            clock.set(now)
            _ = try await store.append([created(index % 2 == 0 ? "alice" : "bob", "n-\(index)")])
            if index % 3 == 0 { _ = try await store.append([read(index % 2 == 0 ? "alice" : "bob", "n-\(index)")]) }
            now += 1000
        }
        let reads = try await store.allEvents(after: nil, filter: EventFilter(types: [.read]), limit: 1000)
        #expect(reads.events.count == 10)
        #expect(reads.events.allSatisfy { $0.type == .read })
        let alice = try await store.allEvents(after: nil, filter: EventFilter(userID: "alice"), limit: 1000)
        #expect(alice.events.allSatisfy { $0.userID == "alice" })
        #expect(alice.events.count == 20)
        #expect(Cursor.samePosition(alice.nextCursor, store.unanchoredAllCursor(seq: alice.events.last!.seq)))
        let window = try await store.allEvents(
            after: nil, filter: EventFilter(since: 1_005_000, until: 1_010_000), limit: 1000)
        #expect(
            window.events.allSatisfy { $0.timestampMilliseconds >= 1_005_000 && $0.timestampMilliseconds < 1_010_000 })
        #expect(window.events.filter { $0.type == .created }.count == 5)
        // has_more is exact with filters: another matching event exists after next_cursor.
        let page = try await store.allEvents(after: nil, filter: EventFilter(types: [.read]), limit: 9)
        #expect(page.hasMore)
        let rest = try await store.allEvents(after: page.nextCursor, filter: EventFilter(types: [.read]), limit: 1)
        #expect(rest.events.count == 1)
        #expect(!rest.hasMore)
        // An empty filtered page keeps the cursor given.
        let none = try await store.allEvents(
            after: store.unanchoredAllCursor(seq: 5), filter: EventFilter(types: [.readAll]))
        #expect(none.events.isEmpty)
        #expect(Cursor.samePosition(none.nextCursor, store.unanchoredAllCursor(seq: 5)))
    }
}
