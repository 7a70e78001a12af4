/// The store's tables in PostgreSQL. The log is `tidings_blocks`: the same LZ4 blocks with the
/// same hash chain as the SQLite engine, append-only by trigger. Everything else is the
/// projection (rebuildable from the blocks) or the head row every commit locks.
///
/// Every statement is idempotent: a node that starts applies them all inside one transaction
/// holding an advisory lock, so nodes starting together on a new database create it once.
enum PostgresSchema {
    /// Bumped when a statement below changes; stored in `tidings_head.schema_version`.
    static let version: Int64 = 2

    /// The advisory lock key of schema changes and of the online rebuild.
    static let schemaLock: Int64 = 0x7469_6469_6e67_7301
    static let rebuildLock: Int64 = 0x7469_6469_6e67_7302

    /// The projection's tables, which a rebuild writes anew beside the live ones (with a
    /// `tidings_rebuild_` prefix) and then swaps in.
    static let projectionTables = ["users", "user_events", "notifications", "event_ids"]

    static func projectionStatements(prefix: String) -> [String] {
        [
            // A user's number (what records name), stream head and counts.
            """
            CREATE TABLE IF NOT EXISTS \(prefix)users (
                user_no int8 PRIMARY KEY, user_id text NOT NULL, stream_seq int8 NOT NULL, unread int8 NOT NULL,
                unseen int8 NOT NULL DEFAULT 0, archived int8 NOT NULL DEFAULT 0)
            """,
            "CREATE UNIQUE INDEX IF NOT EXISTS \(prefix)users_user_id ON \(prefix)users (user_id)",
            // The user streams: where each stream_seq is in the log, and the counts after it.
            """
            CREATE TABLE IF NOT EXISTS \(prefix)user_events (
                user_no int8 NOT NULL, stream_seq int8 NOT NULL, seq int8 NOT NULL, unread_after int8 NOT NULL,
                unseen_after int8 NOT NULL DEFAULT 0, archived_after int8 NOT NULL DEFAULT 0,
                PRIMARY KEY (user_no, stream_seq))
            """,
            // Each notification by its id in key form: its state (`NotificationState` flags: 1
            // unread, 2 unseen, 4 archived, 8 snoozed), when its snooze ends, and its kind (for
            // bulk events with a kind filter).
            """
            CREATE TABLE IF NOT EXISTS \(prefix)notifications (
                user_no int8 NOT NULL, notification_id bytea NOT NULL, created_seq int8 NOT NULL,
                flags int2 NOT NULL DEFAULT 0, snoozed_until int8, kind text,
                PRIMARY KEY (user_no, notification_id))
            """,
            """
            CREATE INDEX IF NOT EXISTS \(prefix)notifications_unread
                ON \(prefix)notifications (user_no, created_seq) WHERE flags & 1 <> 0
            """,
            """
            CREATE INDEX IF NOT EXISTS \(prefix)notifications_set_aside
                ON \(prefix)notifications (user_no, created_seq) WHERE flags & 12 <> 0
            """,
            """
            CREATE INDEX IF NOT EXISTS \(prefix)notifications_snoozed
                ON \(prefix)notifications (snoozed_until) WHERE snoozed_until IS NOT NULL
            """,
            // Client-supplied event ids, for permanent idempotency.
            "CREATE TABLE IF NOT EXISTS \(prefix)event_ids (event_id text PRIMARY KEY, seq int8 NOT NULL)",
        ]
    }

    static let statements: [String] =
        [
            """
            CREATE TABLE IF NOT EXISTS tidings_head (
                id int4 PRIMARY KEY CHECK (id = 1),
                schema_version int8 NOT NULL,
                epoch int8 NOT NULL,
                fanout_key bytea NOT NULL,
                created_at int8 NOT NULL,
                seq int8 NOT NULL,
                hash bytea NOT NULL,
                ts int8 NOT NULL,
                next_user_no int8 NOT NULL,
                dictionary_id int8 NOT NULL,
                undictionaried_bytes int8 NOT NULL,
                blocks int8 NOT NULL,
                raw_bytes int8 NOT NULL,
                stored_bytes int8 NOT NULL,
                generation int8 NOT NULL)
            """,
            "CREATE TABLE IF NOT EXISTS tidings_dictionaries (dictionary_id int8 PRIMARY KEY, bytes bytea NOT NULL)",
            """
            CREATE TABLE IF NOT EXISTS tidings_blocks (
                first_seq int8 PRIMARY KEY,
                event_count int4 NOT NULL,
                first_ts int8 NOT NULL,
                last_ts int8 NOT NULL,
                type_mask int4 NOT NULL,
                raw_bytes int4 NOT NULL,
                records_bytes int4 NOT NULL,
                dictionary_id int8 NOT NULL,
                payload_check int8 NOT NULL,
                checks bytea NOT NULL,
                end_hash bytea NOT NULL,
                payload bytea NOT NULL)
            """,
            // Payloads are LZ4 already: PostgreSQL must not try to compress them again.
            "ALTER TABLE tidings_blocks ALTER COLUMN payload SET STORAGE EXTERNAL",
            """
            CREATE OR REPLACE FUNCTION tidings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the Tidings log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """,
            "DROP TRIGGER IF EXISTS tidings_blocks_append_only ON tidings_blocks",
            """
            CREATE TRIGGER tidings_blocks_append_only BEFORE UPDATE OR DELETE ON tidings_blocks
                FOR EACH ROW EXECUTE FUNCTION tidings_refuse_change()
            """,
            "DROP TRIGGER IF EXISTS tidings_blocks_no_truncate ON tidings_blocks",
            """
            CREATE TRIGGER tidings_blocks_no_truncate BEFORE TRUNCATE ON tidings_blocks
                FOR EACH STATEMENT EXECUTE FUNCTION tidings_refuse_change()
            """,
            // Schema 1 to 2: the unread flag becomes the state flags, with two more counts. What
            // schema 1 held is exactly what the rules give (a notification read is seen, so the
            // unseen ones are the unread ones); schema 1 kept no kinds, so the node that upgrades
            // rebuilds the projection from the log before it serves (`PostgresStore.open`).
            """
            DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_name = 'tidings_notifications' AND column_name = 'unread') THEN
                ALTER TABLE tidings_users ADD COLUMN unseen int8 NOT NULL DEFAULT 0,
                    ADD COLUMN archived int8 NOT NULL DEFAULT 0;
                UPDATE tidings_users SET unseen = unread;
                ALTER TABLE tidings_user_events ADD COLUMN unseen_after int8 NOT NULL DEFAULT 0,
                    ADD COLUMN archived_after int8 NOT NULL DEFAULT 0;
                UPDATE tidings_user_events SET unseen_after = unread_after WHERE unread_after <> 0;
                ALTER TABLE tidings_notifications ADD COLUMN flags int2 NOT NULL DEFAULT 0,
                    ADD COLUMN snoozed_until int8, ADD COLUMN kind text;
                UPDATE tidings_notifications SET flags = 3 WHERE unread;
                ALTER TABLE tidings_notifications DROP COLUMN unread;
            END IF;
            END $$
            """,
        ] + projectionStatements(prefix: "tidings_") + PostgresOutbox.schemaStatements
}
