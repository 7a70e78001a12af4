/// One event of a user stream, as the per-user index keeps it.
package struct StreamEntry: Equatable, Sendable {
    package var streamSeq: Int64
    package var seq: Int64
    /// The user's counts just after the event.
    package var countsAfter: InboxCounts

    package init(streamSeq: Int64, seq: Int64, countsAfter: InboxCounts) {
        self.streamSeq = streamSeq
        self.seq = seq
        self.countsAfter = countsAfter
    }
}

extension StreamEntry {
    /// A run of consecutive entries of one user, packed as varints: the seq delta, then each
    /// count's change from the entry before (zigzag, so a change of one either way takes a
    /// byte): the per-user index stores one such run per row, not a row per event. The run's
    /// first stream_seq is kept beside it; its first entry's counts are relative to zero.
    package static func encodeRun(_ entries: some Collection<StreamEntry>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.count * 5)
        var previous: Int64 = 0
        var counts = InboxCounts.zero
        for entry in entries {
            Varint.append(entry.seq - previous, to: &out)
            Varint.appendSigned(entry.countsAfter.unread - counts.unread, to: &out)
            Varint.appendSigned(entry.countsAfter.unseen - counts.unseen, to: &out)
            Varint.appendSigned(entry.countsAfter.archived - counts.archived, to: &out)
            previous = entry.seq
            counts = entry.countsAfter
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
        var counts = InboxCounts.zero
        while !reader.isAtEnd {
            seq += try reader.int64()
            counts.unread += try reader.signedInt64()
            counts.unseen += try reader.signedInt64()
            counts.archived += try reader.signedInt64()
            out.append(StreamEntry(streamSeq: streamSeq, seq: seq, countsAfter: counts))
            streamSeq += 1
        }
        return out
    }
}
