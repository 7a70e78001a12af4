import TidingsStore

extension Block {
    static let insertSQL: StaticString = """
        INSERT INTO blocks (first_seq, event_count, first_ts, last_ts, type_mask, raw_bytes, records_bytes,
            dictionary_id, payload, checks, end_hash, payload_check)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
        """

    func insert(into database: Database) throws {
        let statement = try database.cached(Self.insertSQL)
        statement.bind(1, firstSeq)
        statement.bind(2, eventCount)
        statement.bind(3, firstTimestamp)
        statement.bind(4, lastTimestamp)
        statement.bind(5, typeMask)
        statement.bind(6, rawBytes)
        statement.bind(7, recordsBytes)
        statement.bind(8, dictionaryID)
        statement.bind(9, blob: payload)
        statement.bind(10, blob: checks)
        statement.bind(11, blob: endHash)
        statement.bind(12, payloadCheck)
        try statement.run()
    }
}

extension DictionaryCache {
    /// The dictionary `id`, read from the store's `dictionaries` table the first time.
    func dictionary(_ id: Int64, database: Database) throws -> [UInt8]? {
        try dictionary(id) {
            let statement = try database.cached("SELECT bytes FROM dictionaries WHERE dictionary_id = ?1")
            statement.bind(1, id)
            defer { statement.reset() }
            guard try statement.step() else {
                throw StoreError(.internal, "a block names compression dictionary \(id), which the store lacks")
            }
            return statement.bytes(0)
        }
    }
}
