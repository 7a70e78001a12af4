/// A 64-bit checksum of a block's compressed payload, checked every time the block is read.
/// LZ4 carries no checksum of its own, and a flipped byte in a payload often still decompresses,
/// to wrong events; the hash chain catches that, but only `verify` walks it. This check is cheap
/// enough for every read (a multiply per 8 bytes, several GB/s), so a damaged block is refused
/// where it is read instead of being served.
package enum BlockChecksum {
    /// Never 0: 0 marks a block written before checksums were recorded, which is not checked.
    package static func of(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        let count = bytes.count
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(count)
        var offset = 0
        // Each step is a bijection of the running hash for a given word, so a payload that
        // differs from the recorded one in any single word never matches.
        while offset + 8 <= count {
            hash = (hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            hash ^= hash >> 29
            offset += 8
        }
        var rest: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            rest |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        hash = (hash ^ rest) &* 0x94D0_49BB_1331_11EB
        hash ^= hash >> 32
        return Int64(bitPattern: hash | 1)
    }

    /// Throws when `payload` is not what was sealed at `firstSeq` (`DecodedBlock.records` calls it).
    package static func check(_ payload: UnsafeRawBufferPointer, recorded: Int64, firstSeq: Int64) throws(StoreError) {
        guard recorded != 0, of(payload) != recorded else { return }
        throw StoreError(
            .internal,
            "the log is damaged: block at seq \(firstSeq) fails its checksum; run `tidings verify` to locate the damage"
        )
    }
}
