/// A 64-bit FNV-1a hash of a client-supplied event id: the key under which engines index such
/// ids for duplicate detection. Collisions are resolved by reading the events the hash points at.
package enum EventIDHash {
    package static func of(_ id: some Collection<UInt8>) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id {
            hash ^= UInt64(byte)
            hash = hash &* 0x0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}
