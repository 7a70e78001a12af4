/// The protocol's event envelope as compact JSON, written byte by byte:
/// `{"seq","stream_seq","user_id","id","type","ts","data","cursor"}`. `data` is copied verbatim.
public enum EnvelopeJSON {
    public static func append(_ event: StoredEvent, cursor: String, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + event.data.count + 200)
        out += seqKey
        JSONText.appendInteger(event.seq, to: &out)
        out += streamSeqKey
        JSONText.appendInteger(event.streamSeq, to: &out)
        out += userKey
        JSONText.appendQuoted(event.userID, to: &out)
        out += idKey
        JSONText.appendQuoted(event.id, to: &out)
        out += typeKey
        out += event.type.quotedName
        out += tsKey
        Timestamp.append(milliseconds: event.timestampMilliseconds, to: &out)
        out += dataKey
        out += event.data
        out += cursorKey
        out += cursor.utf8
        out += closing
    }

    public static func encode(_ event: StoredEvent, cursor: String) -> [UInt8] {
        var out: [UInt8] = []
        append(event, cursor: cursor, to: &out)
        return out
    }

    private static let seqKey = Array(#"{"seq":"#.utf8)
    private static let streamSeqKey = Array(#","stream_seq":"#.utf8)
    private static let userKey = Array(#","user_id":"#.utf8)
    private static let idKey = Array(#","id":"#.utf8)
    private static let typeKey = Array(#","type":"#.utf8)
    private static let tsKey = Array(#","ts":""#.utf8)
    private static let dataKey = Array(#"","data":"#.utf8)
    private static let cursorKey = Array(#","cursor":""#.utf8)
    private static let closing = Array(#""}"#.utf8)
}

extension EventType {
    private static let quotedNames = allCases.map { Array(("\"" + $0.name + "\"").utf8) }

    /// The wire name with its quotes, ready to copy.
    package var quotedName: [UInt8] { Self.quotedNames[Int(rawValue)] }
}
