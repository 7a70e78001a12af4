import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// The compressor of this node's writer, for the store's current dictionary. The first 64 KiB
/// of records the store seals make its dictionary (as on SQLite); whichever node seals past
/// that point makes it, under the head lock, and every other node loads it when its head shows
/// the new dictionary id.
final class CompressionState: Sendable {
    static let dictionaryBytes = 64 * 1024

    struct Current: @unchecked Sendable {
        // An LZ4 stream is not thread-safe; only the writer, one group at a time, uses it.
        var dictionaryID: Int64
        var compressor: LZ4Compressor
    }

    private let current = Mutex<Current>(Current(dictionaryID: 0, compressor: LZ4Compressor(dictionary: nil)))

    /// Loads the dictionary again at the next group: the log it came from may not be the log
    /// any more (a failover).
    func forget() {
        current.withLock { $0 = Current(dictionaryID: 0, compressor: LZ4Compressor(dictionary: nil)) }
    }

    /// The compressor for the head's dictionary, loading the dictionary when it is new here.
    func compressor(
        for head: LogHead, on connection: PostgresConnection, context: PostgresContext
    ) async throws
        -> Current
    {
        let now = current.withLock { $0 }
        if now.dictionaryID == head.dictionaryID { return now }
        let bytes = try await context.dictionary(head.dictionaryID, on: connection)
        let loaded = Current(dictionaryID: head.dictionaryID, compressor: LZ4Compressor(dictionary: bytes))
        current.withLock { $0 = loaded }
        return loaded
    }

    /// Makes dictionary 1 from the records sealed so far and the ones about to be.
    func makeDictionary(
        upcoming: ArraySlice<PendingEvent>, head: inout LogHead, on connection: PostgresConnection,
        context: PostgresContext
    ) async throws -> Current {
        var sample: [UInt8] = []
        sample.reserveCapacity(Self.dictionaryBytes)
        let rows = try await connection.rows(
            "SELECT \(unescaped: PostgresContext.blockColumns) FROM tidings_blocks ORDER BY first_seq",
            as: PostgresContext.BlockRow.self, logger: context.logger)
        for row in rows where sample.count < Self.dictionaryBytes {
            try await context.decode(row, on: connection).forEach { _, record in
                record.encode(previousTimestamp: record.timestampMilliseconds, into: &sample)
                return sample.count < Self.dictionaryBytes
            }
        }
        for event in upcoming where sample.count < Self.dictionaryBytes {
            event.record.encode(previousTimestamp: event.record.timestampMilliseconds, into: &sample)
        }
        if sample.count > Self.dictionaryBytes { sample.removeLast(sample.count - Self.dictionaryBytes) }
        try await connection.run(
            "INSERT INTO tidings_dictionaries (dictionary_id, bytes) VALUES (1, \(sample.buffer))",
            logger: context.logger)
        head.dictionaryID = 1
        let made = Current(dictionaryID: 1, compressor: LZ4Compressor(dictionary: sample))
        current.withLock { $0 = made }
        return made
    }

    /// After a failed group: the next one loads the compressor again from its head.
    func reset() {
        current.withLock { $0 = Current(dictionaryID: -1, compressor: LZ4Compressor(dictionary: nil)) }
    }
}
