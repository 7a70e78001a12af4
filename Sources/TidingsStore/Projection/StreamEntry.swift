/// One event of a user stream, as the per-user index keeps it.
package struct StreamEntry: Equatable, Sendable {
    package var streamSeq: Int64
    package var seq: Int64
    package var unreadAfter: Int64

    package init(streamSeq: Int64, seq: Int64, unreadAfter: Int64) {
        self.streamSeq = streamSeq
        self.seq = seq
        self.unreadAfter = unreadAfter
    }
}

extension StreamEntry {
    /// A run of consecutive entries of one user, packed as varint pairs (seq delta, unread count
    /// after): the per-user index stores one such run per row, not a row per event. The run's
    /// first stream_seq is kept beside it.
    package static func encodeRun(_ entries: some Collection<StreamEntry>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 4)
        var previous: Int64 = 0
        for entry in entries {
            Varint.append(entry.seq - previous, to: &out)
            Varint.append(entry.unreadAfter, to: &out)
            previous = entry.seq
        }
        return out
    }

    package static func decodeRun(
        _ blob: UnsafeRawBufferPointer, firstStreamSeq: Int64
    ) throws(DecodeError) -> [StreamEntry] {
        var reader = ByteReader(blob)
        var out: [StreamEntry] = []
        var seq: Int64 = 0
        var streamSeq = firstStreamSeq
        while !reader.isAtEnd {
            seq += try reader.int64()
            out.append(StreamEntry(streamSeq: streamSeq, seq: seq, unreadAfter: try reader.int64()))
            streamSeq += 1
        }
        return out
    }
}
