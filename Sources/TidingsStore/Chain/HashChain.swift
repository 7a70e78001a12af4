import Crypto

/// The tamper-evident chain: `hash(n) = SHA-256(hash(n-1) || canonical(n))`, with 32 zero bytes
/// before the first event. The canonical bytes are built from the envelope's fields alone, so
/// an auditor can recompute the chain from an NDJSON export without this code:
///
///     seq u64 | stream_seq u64 | ts_ms u64 | len u16 + type | len u16 + user_id
///     | len u16 + id | len u32 + data
///
/// (big-endian integers; `data` is the compact JSON exactly as exported.)
public enum HashChain {
    public static let genesis = [UInt8](repeating: 0, count: 32)

    package static func canonicalBytes(
        seq: Int64, streamSeq: Int64, timestampMilliseconds: Int64, type: EventType, userID: some Collection<UInt8>,
        id: some Collection<UInt8>, data: some Collection<UInt8>, into out: inout [UInt8]
    ) {
        BigEndian.append(UInt64(seq), to: &out)
        BigEndian.append(UInt64(streamSeq), to: &out)
        BigEndian.append(UInt64(timestampMilliseconds), to: &out)
        let typeName = type.name.utf8
        BigEndian.append(UInt16(typeName.count), to: &out)
        out += typeName
        BigEndian.append(UInt16(userID.count), to: &out)
        out += userID
        BigEndian.append(UInt16(id.count), to: &out)
        out += id
        BigEndian.append(UInt32(data.count), to: &out)
        out += data
    }

    /// The next link of the chain.
    package static func next(previous: [UInt8], canonical: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonical)
        return Array(hasher.finalize())
    }

    /// Lowercase hex, as `head_hash` is written.
    public static func hex(_ hash: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(hash.count * 2)
        for byte in hash {
            out.append(HexDigit.lower(byte >> 4))
            out.append(HexDigit.lower(byte & 0xF))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses 64 lowercase hex digits; nil otherwise.
    public static func parseHex(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = UUIDText.lowerHexValue(bytes[index]), let low = UUIDText.lowerHexValue(bytes[index + 1])
            else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
