import TidingsStore

/// Writes a rebuilt projection into empty tables straight from the `RebuildState`, table by
/// table in key order, so every insert appends to its B-tree. It writes a slice of rows per call
/// and remembers where it stopped, so a rebuild can spread the writing over short transactions
/// while appends go on.
struct RebuildRows: Sendable {
    let state: RebuildState
    let entriesPerRowMax: Int
    /// Rows in all tables together.
    let rowCount: Int
    private let eventIDs: [(Int64, Int64)]

    private enum Table: Int {
        case userEvents, notifications, states, eventIDs, done
    }

    private var table = Table.userEvents
    private var user = 1
    /// Position within the current user's entries or notifications, or in `eventIDs`.
    private var offset = 0
    /// The current user's notifications ordered by id, for the notifications table.
    private var sortedUser = 0
    private var sorted: [(seq: Int64, id: PackedNotificationID)] = []

    init(_ state: RebuildState, entriesPerRowMax: Int = 1_024) {
        self.state = state
        self.entriesPerRowMax = entriesPerRowMax
        var rows = state.explicitIDs.count
        for user in state.users {
            rows += (user.entries.count + entriesPerRowMax - 1) / entriesPerRowMax + user.created.count
            rows += user.created.lazy.filter { state.state($0.seq).flags != 0 }.count
        }
        rowCount = rows
        eventIDs = state.explicitIDs.sorted { $0 < $1 }
    }

    var isDone: Bool { table == .done }

    /// Writes up to `rowsMax` more rows through `base`'s connection, inside the caller's
    /// transaction. Returns how many it wrote.
    mutating func write(to base: ProjectionBase, rowsMax: Int = .max) throws -> Int {
        var written = 0
        while written < rowsMax && table != .done {
            switch table {
            case .userEvents: written += try writeUserEvents(base, rowsMax - written)
            case .notifications: written += try writeNotifications(base, rowsMax - written)
            case .states: written += try writeStates(base, rowsMax - written)
            case .eventIDs: written += try writeEventIDs(base, rowsMax - written)
            case .done: break
            }
        }
        return written
    }

    private mutating func nextTable() {
        table = Table(rawValue: table.rawValue + 1)!
        user = 1
        offset = 0
    }

    private mutating func nextUser() {
        user += 1
        offset = 0
    }

    private mutating func writeUserEvents(_ base: ProjectionBase, _ rowsMax: Int) throws -> Int {
        let statement = try base.database.cached(
            composed:
                "INSERT INTO \(base.prefix)user_events (user_no, first_stream_seq, entries) VALUES (?1, ?2, ?3)")
        var written = 0
        while written < rowsMax {
            guard user < state.users.count else {
                nextTable()
                break
            }
            let entries = state.users[user].entries
            guard offset < entries.count else {
                nextUser()
                continue
            }
            let end = min(offset + entriesPerRowMax, entries.count)
            statement.bind(1, Int64(user))
            statement.bind(2, entries[offset].streamSeq)
            statement.bind(3, blob: StreamEntry.encodeRun(entries[offset..<end]))
            try statement.run()
            written += 1
            offset = end
        }
        return written
    }

    private mutating func writeNotifications(_ base: ProjectionBase, _ rowsMax: Int) throws -> Int {
        let statement = try base.database.cached(
            composed:
                "INSERT INTO \(base.prefix)notifications (user_no, notification_id, created_seq) VALUES (?1, ?2, ?3)")
        var written = 0
        while written < rowsMax {
            guard user < state.users.count else {
                nextTable()
                break
            }
            if sortedUser != user {
                sorted = state.users[user].created.sorted { $0.id < $1.id }
                sortedUser = user
            }
            guard offset < sorted.count else {
                nextUser()
                continue
            }
            statement.bind(1, Int64(user))
            sorted[offset].id.withBytes { statement.bind(2, blob: $0) }
            statement.bind(3, sorted[offset].seq)
            try statement.run()
            written += 1
            offset += 1
        }
        return written
    }

    private mutating func writeStates(_ base: ProjectionBase, _ rowsMax: Int) throws -> Int {
        let statement = try base.database.cached(
            composed:
                "INSERT INTO \(base.prefix)states (user_no, created_seq, flags, snoozed_until) VALUES (?1, ?2, ?3, ?4)")
        var written = 0
        while written < rowsMax {
            guard user < state.users.count else {
                nextTable()
                break
            }
            let created = state.users[user].created
            guard offset < created.count else {
                nextUser()
                continue
            }
            let notification = state.state(created[offset].seq)
            offset += 1
            guard notification.flags != 0 else { continue }
            statement.bind(1, Int64(user))
            statement.bind(2, notification.createdSeq)
            notification.bind(to: statement)
            try statement.run()
            written += 1
        }
        return written
    }

    private mutating func writeEventIDs(_ base: ProjectionBase, _ rowsMax: Int) throws -> Int {
        let statement = try base.database.cached(
            composed: "INSERT INTO \(base.prefix)event_ids (id_hash, seq) VALUES (?1, ?2)")
        var written = 0
        while written < rowsMax {
            guard offset < eventIDs.count else {
                nextTable()
                break
            }
            statement.bind(1, eventIDs[offset].0)
            statement.bind(2, eventIDs[offset].1)
            try statement.run()
            written += 1
            offset += 1
        }
        return written
    }
}
