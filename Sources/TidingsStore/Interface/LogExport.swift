/// An export of the `all` stream as NDJSON envelopes with `all` cursors, one chunk at a time:
/// the path of `GET /v1/events` with NDJSON and `tidings export`.
///
/// It ends at `throughSeq`, the head when it started, however long its consumer takes. An engine
/// reads it in short runs that hold nothing between chunks (no connection, no snapshot), so a
/// consumer that stops reading for an hour pins nothing in the store.
public struct LogExport: AsyncSequence, Sendable {
    public typealias Element = Chunk

    /// Envelopes of consecutive matching events, one a line.
    public struct Chunk: Sendable {
        public let bytes: [UInt8]
        /// The seq of the chunk's last event.
        public let lastSeq: Int64
        public let events: Int

        package init(bytes: [UInt8], lastSeq: Int64, events: Int) {
            self.bytes = bytes
            self.lastSeq = lastSeq
            self.events = events
        }
    }

    /// Reads the next chunk of one iteration; nil after the last.
    package typealias ChunkReader = () async throws -> Chunk?

    /// The export's events are through this seq.
    public let throughSeq: Int64
    private let makeReader: @Sendable () -> ChunkReader

    /// `makeReader` starts one iteration of the export from its beginning.
    package init(throughSeq: Int64, makeReader: @escaping @Sendable () -> ChunkReader) {
        self.throughSeq = throughSeq
        self.makeReader = makeReader
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(readNext: makeReader())
    }

    public struct Iterator: AsyncIteratorProtocol {
        package let readNext: ChunkReader

        /// The next chunk; nil after the last.
        public mutating func next() async throws -> Chunk? {
            try await readNext()
        }

    }
}
