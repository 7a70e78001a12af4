import Crypto

/// Ids the server assigns when a client gives none: a UUID (version 8) made of a 48-bit prefix
/// derived from the store's epoch and the event's seq, e.g. `3f2a9c1b-77e4-8000-8000-0000000003e8`.
/// Unique within the store, recognisable, and free to store: a record only flags that its id
/// is derived. A client may retry with such an id (it names that event); it may not claim one
/// for an event of its own, since the store would later assign it (409 conflict).
package struct DerivedEventID: Sendable {
    package let prefix: [UInt8]

    package init(epoch: UInt64) {
        var seed = Array("tidings-derived-event-id".utf8)
        BigEndian.append(epoch, to: &seed)
        prefix = Array(SHA256.hash(data: seed).prefix(6))
    }

    /// Appends the id's text.
    package func append(seq: Int64, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { buffer in
            let bytes = buffer.baseAddress!
            for index in 0..<6 { bytes[index] = prefix[index] }
            bytes[6] = 0x80
            bytes[7] = 0x00
            bytes[8] = 0x80
            for index in 0..<7 { bytes[9 + index] = UInt8(truncatingIfNeeded: seq >> Int64(48 - 8 * index)) }
            UUIDText.appendUnpacked(UnsafeRawBufferPointer(buffer), to: &out)
        }
    }

    package func text(seq: Int64) -> [UInt8] {
        var bytes = prefix
        bytes += [0x80, 0x00, 0x80]
        for shift in stride(from: 48, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: seq >> Int64(shift)))
        }
        return bytes.withUnsafeBytes { UUIDText.unpack($0) }
    }

    /// The seq a derived id names, or nil when `id` is not one of this store's derived ids.
    package func seq(of id: some Collection<UInt8>) -> Int64? {
        guard id.count == 36, let bytes = UUIDText.pack(Array(id)), Array(bytes.prefix(6)) == prefix,
            bytes[6] == 0x80, bytes[7] == 0x00, bytes[8] == 0x80
        else { return nil }
        var seq: Int64 = 0
        for byte in bytes[9..<16] { seq = seq << 8 | Int64(byte) }
        return seq
    }
}
