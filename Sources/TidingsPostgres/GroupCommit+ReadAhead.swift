import Logging
import NIOCore
import PostgresNIO
import TidingsStore

extension GroupCommit {
    /// What a group read ahead under the head lock: the projection rows its events touch, and
    /// the seqs of the event ids it names that the log already holds.
    struct ReadAhead {
        var view: GroupView
        var seqsByID: [String: Int64]
    }

    /// One query for everything a group's events need from the projection (`ReadAheadStatement`).
    func readAhead(_ events: [ValidatedEvent], head: LogHead) async throws -> ReadAhead {
        var seqsByID: [String: Int64] = [:]
        var explicitIDs: Set<String> = []
        var userIDs: Set<String> = []
        var pairUsers: [String] = []
        var pairIDs: [ByteBuffer] = []
        var readAllUsers: Set<String> = []
        for event in events {
            userIDs.insert(event.userID)
            if event.type == .readAll {
                readAllUsers.insert(event.userID)
            } else {
                pairUsers.append(event.userID)
                pairIDs.append(event.notificationKey.buffer)
            }
            guard let id = event.id else { continue }
            if let seq = context.derivedIDs.seq(of: id.utf8) {
                if seq >= 1 && seq <= head.seq { seqsByID[id] = seq }
            } else {
                explicitIDs.insert(id)
            }
        }
        let statement = ReadAheadStatement(
            userIDs: Array(userIDs), pairUsers: pairUsers, pairIDs: pairIDs, readAllUsers: Array(readAllUsers),
            eventIDs: Array(explicitIDs))
        var rows: [ReadAheadStatement.Row] = []
        for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
        var view = GroupView(nextUserNo: head.nextUserNo)
        var notifications: [(Int64, ByteBuffer, Int64, Bool)] = []
        var users: [(Int64, String)] = []
        for (part, number, name, sequence, unread, id, isUnread) in rows {
            switch part {
            case 0:
                guard let name, let sequence, let unread else { continue }
                view.load(
                    user: GroupView.User(
                        userNo: number, userID: name, streamSeq: sequence, unread: unread, isNew: false))
                users.append((number, name))
            case 1, 2:
                guard let id, let sequence, let isUnread else { continue }
                notifications.append((number, id, sequence, isUnread))
            default:
                if let name { seqsByID[name] = number }
            }
        }
        for (user, id, created, unread) in notifications {
            view.load(userNo: user, id: id.bytes, createdSeq: created, isUnread: unread)
        }
        for name in readAllUsers {
            if let number = view.existingUserNo(name) { view.markUnreadComplete(userNo: number) }
        }
        context.rememberUsers(users)
        return ReadAhead(view: view, seqsByID: seqsByID)
    }
}

/// Everything a group's events need from the projection, in one query: their users, the
/// notifications they name, every unread notification of users who read all, and the event ids
/// already taken. Each is a part of one `UNION ALL`, told apart by its first column: each
/// statement is a round trip, and a small group's time went on round trips and planning, not on
/// work. Prepared once per connection, so the plan is made once.
struct ReadAheadStatement: PostgresPreparedStatement {
    static let sql = """
        WITH u AS (SELECT user_no, user_id, stream_seq, unread FROM tidings_users WHERE user_id = ANY($1::text[]))
        SELECT 0::int2, user_no, user_id, stream_seq, unread, NULL::bytea, NULL::bool FROM u
        UNION ALL
        SELECT 1::int2, n.user_no, NULL, n.created_seq, NULL, n.notification_id, n.unread
            FROM unnest($2::text[], $3::bytea[]) AS k(user_id, notification_id)
            JOIN u ON u.user_id = k.user_id
            JOIN tidings_notifications n ON n.user_no = u.user_no AND n.notification_id = k.notification_id
        UNION ALL
        SELECT 2::int2, n.user_no, NULL, n.created_seq, NULL, n.notification_id, true
            FROM u JOIN tidings_notifications n ON n.user_no = u.user_no AND n.unread
            WHERE u.user_id = ANY($4::text[])
        UNION ALL
        SELECT 3::int2, seq, event_id, NULL, NULL, NULL, NULL FROM tidings_event_ids WHERE event_id = ANY($5::text[])
        """
    typealias Row = (Int16, Int64, String?, Int64?, Int64?, ByteBuffer?, Bool?)

    var userIDs: [String]
    var pairUsers: [String]
    var pairIDs: [ByteBuffer]
    var readAllUsers: [String]
    var eventIDs: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 5)
        bindings.append(userIDs)
        bindings.append(pairUsers)
        bindings.append(pairIDs)
        bindings.append(readAllUsers)
        bindings.append(eventIDs)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
