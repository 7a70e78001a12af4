import Logging
import NIOCore
import PostgresNIO
import TidingsStore

/// Transactional publishing: an application inserts events into `tidings_outbox` inside its
/// own transaction, so its business change and the notification commit together or not at
/// all. Nodes drain the table in `outbox_id` order inside their group transactions: each row
/// is one atomic append under every rule of the HTTP API, and is marked with what became of it
/// in the same transaction (`appended`, `duplicate`, `noop`, or `rejected` with the error code
/// and message). A row is never dropped silently and never appended twice.
struct PostgresOutbox: Sendable {
    let context: PostgresContext

    static let schemaStatements: [String] = [
        """
        CREATE TABLE IF NOT EXISTS tidings_outbox (
            outbox_id bigserial PRIMARY KEY,
            type text NOT NULL,
            user_id text NOT NULL,
            event_id text,
            data json NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'appended', 'duplicate', 'noop', 'rejected')),
            seq int8,
            error_code text,
            error_message text,
            processed_at timestamptz)
        """,
        "CREATE INDEX IF NOT EXISTS tidings_outbox_pending ON tidings_outbox (outbox_id) WHERE status = 'pending'",
        // Wakes the nodes at once; they also look every second.
        """
        CREATE OR REPLACE FUNCTION tidings_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tidings_outbox', '');
            RETURN NULL;
        END $$
        """,
        "DROP TRIGGER IF EXISTS tidings_outbox_inserted ON tidings_outbox",
        """
        CREATE TRIGGER tidings_outbox_inserted AFTER INSERT ON tidings_outbox
            FOR EACH STATEMENT EXECUTE FUNCTION tidings_outbox_notify()
        """,
    ]

    /// A pending row: its request, or why it cannot be one.
    struct Row: Sendable {
        var outboxID: Int64
        var request: AppendRequest?
        var rejection: StoreError?
    }

    /// The oldest pending rows, locked for this transaction.
    func pending(on connection: PostgresConnection) async throws -> [Row] {
        let rows = try await connection.rows(
            """
            SELECT outbox_id, type, user_id, event_id, data::text FROM tidings_outbox
            WHERE status = 'pending' ORDER BY outbox_id LIMIT \(context.options.outboxBatchMax)
            FOR UPDATE SKIP LOCKED
            """, as: (Int64, String, String, String?, String).self, logger: context.logger)
        return rows.map { id, type, user, eventID, data in
            let event = NewEvent(type: type, userID: user, id: eventID, data: Array(data.utf8))
            do {
                return Row(outboxID: id, request: AppendRequest(events: try AppendBatch.validate([event])))
            } catch let error as StoreError {
                return Row(outboxID: id, rejection: error)
            } catch {
                return Row(outboxID: id, rejection: StoreError(.badRequest, "\(error)"))
            }
        }
    }

    /// Marks each row with its outcome; `outcomes` are those of the rows that had a request.
    func mark(
        _ rows: [Row], outcomes: [Result<AppendResponse, any Error>], on connection: PostgresConnection
    )
        async throws
    {
        guard !rows.isEmpty else { return }
        var ids: [Int64] = []
        var statuses: [String] = []
        var seqs: [Int64] = []
        var codes: [String] = []
        var messages: [String] = []
        var next = outcomes.makeIterator()
        for row in rows {
            ids.append(row.outboxID)
            var status = "rejected"
            var seq: Int64 = 0
            var error = row.rejection
            if row.request != nil {
                switch next.next()! {
                case .success(let response):
                    let result = response.results[0]
                    status = result.status.rawValue
                    seq = result.event?.seq ?? 0
                case .failure(let failure):
                    error = failure as? StoreError ?? StoreError(.internal, "\(failure)")
                }
            }
            if let error, error.code == .unavailable || error.code == .internal {
                // Not the row's fault: leave it pending for the next drain.
                ids.removeLast()
                continue
            }
            statuses.append(status)
            seqs.append(seq)
            codes.append(error?.code.rawValue ?? "")
            messages.append(error.map(\.message) ?? "")
        }
        guard !ids.isEmpty else { return }
        try await connection.run(
            """
            UPDATE tidings_outbox o SET status = k.status, seq = NULLIF(k.seq, 0), error_code = NULLIF(k.code, ''),
                error_message = NULLIF(k.message, ''), processed_at = now()
            FROM unnest(\(ids)::int8[], \(statuses)::text[], \(seqs)::int8[], \(codes)::text[], \(messages)::text[])
                AS k(id, status, seq, code, message)
            WHERE o.outbox_id = k.id
            """, logger: context.logger)
    }
}
