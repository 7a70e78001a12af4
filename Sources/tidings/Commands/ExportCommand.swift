import ArgumentParser
import Foundation
import TidingsStore

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write events as NDJSON envelopes, oldest first.",
        discussion: """
            Exports the all stream, or with --user one user's stream. Each line is an envelope:
              {"seq":1,"stream_seq":1,"user_id":"alice","id":"...","type":"notification.created",
               "ts":"2026-11-26T21:00:00.123Z","data":{...},"cursor":"..."}
            Pass the last line's cursor as --after to continue where an export stopped.

            Examples:
              tidings export --data ./data > all.ndjson
              tidings export --data ./data --user alice --type notification.created
              tidings export --data ./data --since 2026-11-26T00:00:00Z --until 2026-11-27T00:00:00Z
            """
    )

    @OptionGroup var store: StoreLocation

    @Option(help: "Export this user's stream instead of the all stream.")
    var user: String?

    @Option(help: "Start after this cursor (from an earlier export or page).")
    var after: String?

    @Option(name: .customLong("type"), help: "Only this event type (repeatable).")
    var types: [String] = []

    @Option(help: "Only events at or after this RFC 3339 time.")
    var since: String?

    @Option(help: "Only events before this RFC 3339 time.")
    var until: String?

    @Option(name: [.short, .long], help: "Write to this file instead of standard output.")
    var output: String?

    func validate() throws {
        _ = try filter()
    }

    func filter() throws -> EventFilter {
        var filter = EventFilter()
        for name in types {
            guard let type = EventType(name: name) else {
                throw ValidationError(
                    "--type \(name) is not an event type; use notification.created, notification.read or notification.read_all"
                )
            }
            filter.types.insert(type)
        }
        if let since {
            guard let value = Timestamp.parse(since) else {
                throw ValidationError("--since \(since) is not an RFC 3339 time")
            }
            filter.since = value
        }
        if let until {
            guard let value = Timestamp.parse(until) else {
                throw ValidationError("--until \(until) is not an RFC 3339 time")
            }
            filter.until = value
        }
        return filter
    }

    func run() async throws {
        let filter = try filter()
        let writer = try OutputWriter(path: output)
        let bar = ProgressBar("exporting")
        let store = try await store.open()
        defer { store.close() }
        let count: Int
        do {
            if let user {
                count = try await exportUser(store, user: user, filter: filter, writer: writer, bar: bar)
            } else {
                let total = try await store.headSeq()
                count = try await store.exportNDJSON(after: after, filter: filter) { chunk, lastSeq in
                    writer.withBuffer { $0 += chunk }
                    bar.update(lastSeq, of: total)
                    return true
                }
            }
        } catch let error as StoreError {
            throw CLIError("\(error.code): \(error.message)")
        }
        writer.flush()
        bar.finish()
        Console.note("exported \(count) events")
    }

    private func exportUser(
        _ store: any EventStore, user: String, filter: EventFilter, writer: OutputWriter, bar: ProgressBar
    ) async throws -> Int {
        var cursor = after
        var count = 0
        let total = try await store.userHead(userID: user).streamSeq
        while true {
            let page = try await store.userEvents(userID: user, after: cursor, limit: Limits.pageLimitMax)
            for event in page.events where filter.includes(event) {
                writer.withBuffer {
                    EnvelopeJSON.append(event, cursor: store.cursor(of: event, userStream: true), to: &$0)
                    $0.append(10)
                }
                count += 1
            }
            if let last = page.events.last {
                bar.update(last.streamSeq, of: total)
            }
            cursor = page.nextCursor
            if !page.hasMore { return count }
        }
    }
}

extension EventFilter {
    func includes(_ event: StoredEvent) -> Bool {
        if !types.isEmpty && !types.contains(event.type) { return false }
        if let since, event.timestampMilliseconds < since { return false }
        if let until, event.timestampMilliseconds >= until { return false }
        return true
    }
}
