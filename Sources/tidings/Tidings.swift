import ArgumentParser

@main
struct Tidings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tidings",
        abstract: "An event-sourced notification store with a replay API.",
        discussion: """
            Every notification event lands in an append-only, compressed, hash-chained log; a projection
            keeps each user's unread state. A store is one directory (its database is tidings.sqlite), or one
            PostgreSQL database that any number of nodes serve (--postgres URL, or TIDINGS_POSTGRES_URL).

            Try it:
              echo '{"type":"notification.created","user_id":"alice","data":{"notification_id":"n-1","title":"Hi"}}' > events.ndjson
              tidings append --data ./data events.ndjson
              tidings stats --data ./data
              tidings export --data ./data --type notification.read | head
              tidings verify --data ./data
              tidings rebuild --data ./data
              tidings backup --data ./data --to ./tidings-backup.sqlite
            """,
        subcommands: [
            ServeCommand.self, TokenCommand.self, AppendCommand.self, ExportCommand.self, VerifyCommand.self,
            RebuildCommand.self, StatsCommand.self, BackupCommand.self, RestoreCommand.self,
        ]
    )
}
