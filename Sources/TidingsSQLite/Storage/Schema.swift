import TidingsStore

/// The database schema, as numbered migrations. `PRAGMA user_version` holds the number of the
/// last migration applied; opening a store applies the missing ones in one transaction.
///
/// Log tables (`users`, `dictionaries`, `blocks`, `tail`) are append-only: triggers refuse
/// UPDATE and DELETE, except that a tail event may be deleted once a sealed block holds it.
/// Projection tables (`user_events`, `notifications`, `states`, `event_ids`) are derived from
/// the log and may be rewritten or rebuilt at any time.
///
/// `states` holds a row only for a notification that is unread, archived or snoozed: one that
/// is read (and so seen) and neither archived nor snoozed has no row, so a user who keeps up
/// with their inbox costs no rows here however long their history.
enum Schema {
    static let migrations: [String] = [
        // 1: the log, its head, and the projection's base tables.
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT, WITHOUT ROWID;
        CREATE TABLE head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash BLOB NOT NULL,
            ts INTEGER NOT NULL,
            sealed_seq INTEGER NOT NULL,
            checkpoint_seq INTEGER NOT NULL,
            projection_generation INTEGER NOT NULL
        ) STRICT;
        INSERT INTO head (id, seq, hash, ts, sealed_seq, checkpoint_seq, projection_generation)
            VALUES (1, 0, zeroblob(32), 0, 0, 0, 0);

        CREATE TABLE users (user_no INTEGER PRIMARY KEY, user_id TEXT NOT NULL UNIQUE) STRICT;
        CREATE TABLE dictionaries (dictionary_id INTEGER PRIMARY KEY, bytes BLOB NOT NULL) STRICT;
        CREATE TABLE blocks (
            first_seq INTEGER PRIMARY KEY,
            event_count INTEGER NOT NULL CHECK (event_count > 0),
            first_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL,
            type_mask INTEGER NOT NULL,
            raw_bytes INTEGER NOT NULL,
            records_bytes INTEGER NOT NULL,
            dictionary_id INTEGER NOT NULL,
            payload BLOB NOT NULL,
            checks BLOB NOT NULL,
            end_hash BLOB NOT NULL
        ) STRICT;
        CREATE TABLE tail (
            seq INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            raw_bytes INTEGER NOT NULL,
            record BLOB NOT NULL,
            hash BLOB NOT NULL
        ) STRICT;

        CREATE TRIGGER users_append_only_update BEFORE UPDATE ON users
            BEGIN SELECT RAISE(ABORT, 'users is append-only'); END;
        CREATE TRIGGER users_append_only_delete BEFORE DELETE ON users
            BEGIN SELECT RAISE(ABORT, 'users is append-only'); END;
        CREATE TRIGGER dictionaries_append_only_update BEFORE UPDATE ON dictionaries
            BEGIN SELECT RAISE(ABORT, 'dictionaries is append-only'); END;
        CREATE TRIGGER dictionaries_append_only_delete BEFORE DELETE ON dictionaries
            BEGIN SELECT RAISE(ABORT, 'dictionaries is append-only'); END;
        CREATE TRIGGER blocks_append_only_update BEFORE UPDATE ON blocks
            BEGIN SELECT RAISE(ABORT, 'blocks is append-only'); END;
        CREATE TRIGGER blocks_append_only_delete BEFORE DELETE ON blocks
            BEGIN SELECT RAISE(ABORT, 'blocks is append-only'); END;
        CREATE TRIGGER blocks_contiguous BEFORE INSERT ON blocks
            WHEN NEW.first_seq != COALESCE(
                (SELECT first_seq + event_count FROM blocks ORDER BY first_seq DESC LIMIT 1), 1)
            BEGIN SELECT RAISE(ABORT, 'blocks must continue the log without a gap'); END;
        CREATE TRIGGER tail_append_only_update BEFORE UPDATE ON tail
            BEGIN SELECT RAISE(ABORT, 'tail is append-only'); END;
        CREATE TRIGGER tail_delete_only_sealed BEFORE DELETE ON tail
            WHEN COALESCE((SELECT first_seq + event_count FROM blocks
                           WHERE first_seq <= OLD.seq ORDER BY first_seq DESC LIMIT 1), 0) <= OLD.seq
            BEGIN SELECT RAISE(ABORT, 'a tail event is deleted only once a sealed block holds it'); END;

        CREATE TABLE user_events (
            user_no INTEGER NOT NULL,
            first_stream_seq INTEGER NOT NULL,
            entries BLOB NOT NULL,
            PRIMARY KEY (user_no, first_stream_seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE notifications (
            user_no INTEGER NOT NULL,
            notification_id BLOB NOT NULL,
            created_seq INTEGER NOT NULL,
            PRIMARY KEY (user_no, notification_id)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE unread (
            user_no INTEGER NOT NULL,
            created_seq INTEGER NOT NULL,
            PRIMARY KEY (user_no, created_seq)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE event_ids (
            id_hash INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (id_hash, seq)
        ) STRICT, WITHOUT ROWID;
        """,
        // 2: a checksum of each block's compressed payload, checked on every read.
        "ALTER TABLE blocks ADD COLUMN payload_check INTEGER NOT NULL DEFAULT 0",
        // 3: every state of a notification (unread, unseen, archived, snoozed) instead of the
        // unread set, and three counts in each stream entry. The old projection cannot be read
        // by the new rules: it is emptied, and opening the store rebuilds it from the log (the
        // projection version changed too), with the checkpoint at the head so that nothing
        // replays the log into the old tables first.
        """
        DROP TABLE unread;
        DELETE FROM user_events;
        DELETE FROM notifications;
        DELETE FROM event_ids;
        UPDATE head SET checkpoint_seq = seq;
        """ + statesTable(prefix: "") + ";" + statesSnoozedIndex(prefix: ""),
    ]

    static func statesTable(prefix: String) -> String {
        """
        CREATE TABLE \(prefix)states (user_no INTEGER NOT NULL, created_seq INTEGER NOT NULL, flags INTEGER NOT NULL,
            snoozed_until INTEGER, PRIMARY KEY (user_no, created_seq)) STRICT, WITHOUT ROWID
        """
    }

    /// Snoozes by the time they end, for the sweep that appends `notification.unsnoozed`.
    static func statesSnoozedIndex(prefix: String) -> String {
        "CREATE INDEX \(prefix)states_snoozed ON \(prefix)states (snoozed_until) WHERE snoozed_until IS NOT NULL"
    }

    /// The projection tables, in the order rebuild writes and swaps them. Their DDL with a
    /// table-name prefix, so a rebuild can create shadow copies.
    static func projectionTables(prefix: String) -> [(name: String, ddl: String)] {
        [
            (
                "user_events",
                """
                CREATE TABLE \(prefix)user_events (user_no INTEGER NOT NULL, first_stream_seq INTEGER NOT NULL,
                    entries BLOB NOT NULL, PRIMARY KEY (user_no, first_stream_seq)) STRICT, WITHOUT ROWID
                """
            ),
            (
                "notifications",
                """
                CREATE TABLE \(prefix)notifications (user_no INTEGER NOT NULL, notification_id BLOB NOT NULL,
                    created_seq INTEGER NOT NULL, PRIMARY KEY (user_no, notification_id)) STRICT, WITHOUT ROWID
                """
            ),
            ("states", statesTable(prefix: prefix)),
            (
                "event_ids",
                """
                CREATE TABLE \(prefix)event_ids (id_hash INTEGER NOT NULL, seq INTEGER NOT NULL,
                    PRIMARY KEY (id_hash, seq)) STRICT, WITHOUT ROWID
                """
            ),
        ]
    }

    static var latestVersion: Int { migrations.count }

    /// Applies missing migrations. Throws when the database is newer than this software.
    static func migrate(_ database: Database) throws {
        let statement = try database.prepare("PRAGMA user_version")
        _ = try statement.step()
        let current = statement.int(0)
        statement.reset()
        guard current <= latestVersion else {
            throw StoreError(
                .internal,
                "the store's schema version \(current) is newer than this tidings (\(latestVersion)); upgrade tidings")
        }
        guard current < latestVersion else { return }
        try database.transaction(.immediate) {
            for version in current..<latestVersion {
                try database.execute(migrations[version])
            }
            try database.execute("PRAGMA user_version = \(latestVersion)")
        }
    }
}
