import Synchronization

/// Decompressed blocks recently read, shared by all readers of a store, bounded in bytes.
/// Per-user replays hit scattered blocks; the recent ones (the hot tail of the log) are served
/// from here. Full scans bypass it so an export does not flush it.
///
/// Eviction is CLOCK (second chance): a ring of slots with a "used since the hand passed" bit,
/// so inserting and evicting cost O(1) under the lock and no reader ever waits for a sort.
package final class BlockCache: Sendable {
    private struct Slot {
        package var block: DecodedBlock
        package var referenced: Bool
    }

    private struct State {
        package var slots: [Slot?] = []
        package var indexByFirstSeq: [Int64: Int] = [:]
        package var free: [Int] = []
        package var hand = 0
        package var bytes = 0
    }

    package let capacityBytes: Int
    private let state = Mutex(State())

    package init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    /// Forgets every block: the log they came from is not the log any more (a failover).
    package func removeAll() {
        state.withLock { $0 = State() }
    }

    package func block(firstSeq: Int64) -> DecodedBlock? {
        state.withLock { state in
            guard let index = state.indexByFirstSeq[firstSeq] else { return nil }
            state.slots[index]!.referenced = true
            return state.slots[index]!.block
        }
    }

    package func insert(_ block: DecodedBlock) {
        guard capacityBytes > 0, block.cachedBytes <= capacityBytes else { return }
        state.withLock { state in
            if let index = state.indexByFirstSeq[block.firstSeq] {
                state.bytes += block.cachedBytes - state.slots[index]!.block.cachedBytes
                state.slots[index] = Slot(block: block, referenced: true)
            } else {
                // A new block starts marked, so the hand passes it once before it can go.
                let slot = Slot(block: block, referenced: true)
                let index: Int
                if let reused = state.free.popLast() {
                    index = reused
                    state.slots[index] = slot
                } else {
                    index = state.slots.count
                    state.slots.append(slot)
                }
                state.indexByFirstSeq[block.firstSeq] = index
                state.bytes += block.cachedBytes
            }
            while state.bytes > capacityBytes { Self.evictOne(&state) }
        }
    }

    /// Advances the hand to the first slot not used since it last passed, and empties it.
    private static func evictOne(_ state: inout State) {
        while true {
            if state.hand >= state.slots.count { state.hand = 0 }
            let index = state.hand
            state.hand += 1
            guard let slot = state.slots[index] else { continue }
            if slot.referenced {
                state.slots[index]!.referenced = false
                continue
            }
            state.slots[index] = nil
            state.indexByFirstSeq[slot.block.firstSeq] = nil
            state.free.append(index)
            state.bytes -= slot.block.cachedBytes
            return
        }
    }
}

/// The store's compression dictionaries by id. Dictionaries are append-only, so a cached one
/// never changes.
package final class DictionaryCache: Sendable {
    package init() {}

    private let dictionaries = Mutex<[Int64: [UInt8]]>([:])

    /// The dictionary `id`, from the cache or else from `load` (nil for id 0: no dictionary).
    package func dictionary(_ id: Int64, load: () throws -> [UInt8]) rethrows -> [UInt8]? {
        guard id != 0 else { return nil }
        if let bytes = dictionaries.withLock({ $0[id] }) { return bytes }
        let bytes = try load()
        dictionaries.withLock { $0[id] = bytes }
        return bytes
    }

    /// The dictionary if cached; for engines whose loads are asynchronous.
    package func cached(_ id: Int64) -> [UInt8]? {
        dictionaries.withLock { $0[id] }
    }

    package func remember(_ id: Int64, _ bytes: [UInt8]) {
        dictionaries.withLock { $0[id] = bytes }
    }

    package func removeAll() {
        dictionaries.withLock { $0.removeAll() }
    }
}
