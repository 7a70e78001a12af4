import Synchronization

/// Decompressed blocks recently read, shared by all readers of a store, bounded in bytes.
/// Per-user replays hit scattered blocks; the recent ones (the hot tail of the log) are served
/// from here. Full scans bypass it so an export does not flush it.
final class BlockCache: Sendable {
    private struct Entry {
        var block: DecodedBlock
        var lastUse: UInt64
    }

    private struct State {
        var entries: [Int64: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    let capacityBytes: Int
    private let state = Mutex(State())

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    func block(firstSeq: Int64) -> DecodedBlock? {
        state.withLock { state in
            guard var entry = state.entries[firstSeq] else { return nil }
            state.clock += 1
            entry.lastUse = state.clock
            state.entries[firstSeq] = entry
            return entry.block
        }
    }

    func insert(_ block: DecodedBlock) {
        guard capacityBytes > 0 else { return }
        state.withLock { state in
            state.clock += 1
            if let old = state.entries.updateValue(Entry(block: block, lastUse: state.clock), forKey: block.firstSeq) {
                state.bytes -= old.block.records.count
            }
            state.bytes += block.records.count
            guard state.bytes > capacityBytes else { return }
            // Evict the least recently used quarter in one go, so eviction is rare.
            let victims = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }
            var index = 0
            while state.bytes > capacityBytes * 3 / 4, index < victims.count {
                state.entries[victims[index].key] = nil
                state.bytes -= victims[index].value.block.records.count
                index += 1
            }
        }
    }
}

/// The store's compression dictionaries by id. Dictionaries are append-only, so a cached one
/// never changes.
final class DictionaryCache: Sendable {
    private let dictionaries = Mutex<[Int64: [UInt8]]>([:])

    func dictionary(_ id: Int64, database: Database) throws -> [UInt8]? {
        guard id != 0 else { return nil }
        if let bytes = dictionaries.withLock({ $0[id] }) { return bytes }
        let statement = try database.cached("SELECT bytes FROM dictionaries WHERE dictionary_id = ?1")
        statement.bind(1, id)
        defer { statement.reset() }
        guard try statement.step() else {
            throw StoreError(.internal, "a block names compression dictionary \(id), which the store lacks")
        }
        let bytes = statement.bytes(0)
        dictionaries.withLock { $0[id] = bytes }
        return bytes
    }
}
