import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct CodecTests {
    @Test func identifiersOfEveryLengthAndUUIDsRoundTrip() throws {
        var identifiers = (1...128).map { String(repeating: "a", count: $0) }
        identifiers += ["0", ".a", "d18eeb01-fcb2-46aa-910d-23965382e20d", "D18EEB01-FCB2-46AA-910D-23965382E20D"]
        for identifier in identifiers {
            var bytes: [UInt8] = []
            CompactIdentifier.append(Array(identifier.utf8), to: &bytes)
            try bytes.withUnsafeBytes { (buffer) throws in
                var reader = ByteReader(buffer)
                #expect(try CompactIdentifier.read(&reader) == Array(identifier.utf8))
                #expect(reader.isAtEnd)
            }
        }
    }

    @Test func dataTransformIsExactlyInvertibleOnTheCorpus() throws {
        var corpus = CorpusGenerator(seed: 5)
        for _ in 0..<5_000 {
            let event = corpus.next()
            try checkRoundTrip(event.data, notificationID: [])
            try checkRoundTrip(event.data, notificationID: Array("d18eeb01-fcb2-46aa-910d-23965382e20d".utf8))
        }
    }

    @Test func dataTransformIsExactlyInvertibleOnRandomJSONText() throws {
        var random = SeededGenerator(seed: 9)
        let pieces = [
            #""notification_id":""#, #""title":"#, "0123456789abcdef", "d18eeb01-fcb2-46aa-910d-23965382e20d", "\"",
            "\\",
            "-", "é", "{", "}", "ffffffffffffffffffffffffffffffffffffff", "n-1", "Z", " ", "\u{7F}",
        ].map { Array($0.utf8) }
        for _ in 0..<20_000 {
            var data: [UInt8] = []
            for _ in 0..<Int(random.next() % 20) { data += pieces[Int(random.next() % UInt64(pieces.count))] }
            let own = random.next() % 2 == 0 ? Array("n-1".utf8) : Array("d18eeb01-fcb2-46aa-910d-23965382e20d".utf8)
            try checkRoundTrip(data, notificationID: own)
        }
    }

    private func checkRoundTrip(_ data: [UInt8], notificationID: [UInt8]) throws {
        var encoded: [UInt8] = []
        DataTransform.encode(data, notificationID: notificationID, into: &encoded)
        var decoded: [UInt8] = []
        try encoded.withUnsafeBytes { (buffer) throws in
            try DataTransform.decode(buffer, notificationID: notificationID, into: &decoded)
        }
        #expect(decoded == data)
    }

    @Test func recordsRoundTripWithAndWithoutOptionalFields() throws {
        let records = [
            LogRecord(
                type: .created, userNo: 1, streamSeq: 1, timestampMilliseconds: 1_800_000_000_000, explicitID: nil,
                notificationID: Array("n".utf8), upToSeq: nil, transformedData: [1, 2, 3]),
            LogRecord(
                type: .read, userNo: 99_999, streamSeq: 300, timestampMilliseconds: 1_800_000_000_005,
                explicitID: Array("evt-1".utf8), notificationID: Array("d18eeb01-fcb2-46aa-910d-23965382e20d".utf8),
                upToSeq: nil, transformedData: []),
            LogRecord(
                type: .readAll, userNo: 7, streamSeq: 2, timestampMilliseconds: 1_800_000_000_005,
                explicitID: Array("a".utf8), notificationID: [], upToSeq: 12, transformedData: Array("{}".utf8)),
        ]
        var bytes: [UInt8] = []
        var previous: Int64 = 1_799_999_999_000
        for record in records {
            record.encode(previousTimestamp: previous, into: &bytes)
            previous = record.timestampMilliseconds
        }
        try bytes.withUnsafeBytes { (buffer) throws in
            var reader = ByteReader(buffer)
            var previous: Int64 = 1_799_999_999_000
            for record in records {
                let decoded = try LogRecord.decode(&reader, previousTimestamp: previous)
                #expect(decoded == record)
                previous = decoded.timestampMilliseconds
            }
            #expect(reader.isAtEnd)
            var skipper = ByteReader(buffer)
            var timestamp: Int64 = 1_799_999_999_000
            for record in records {
                timestamp = try LogRecord.skip(&skipper, previousTimestamp: timestamp)
                #expect(timestamp == record.timestampMilliseconds)
            }
        }
    }

    @Test func truncatedOrCorruptedRecordsFailCleanly() {
        var bytes: [UInt8] = []
        LogRecord(
            type: .created, userNo: 5, streamSeq: 9, timestampMilliseconds: 10, explicitID: Array("evt".utf8),
            notificationID: Array("n-1".utf8), upToSeq: nil, transformedData: Array("{\"x\":1}".utf8)
        ).encode(previousTimestamp: 0, into: &bytes)
        var random = SeededGenerator(seed: 2)
        for cut in 0..<bytes.count {
            bytes.withUnsafeBytes { buffer in
                var reader = ByteReader(UnsafeRawBufferPointer(rebasing: buffer[0..<cut]))
                #expect(throws: DecodeError.self) { _ = try LogRecord.decode(&reader, previousTimestamp: 0) }
            }
        }
        for _ in 0..<2_000 {
            var damaged = bytes
            damaged[Int(random.next() % UInt64(damaged.count))] = UInt8(truncatingIfNeeded: random.next())
            damaged.withUnsafeBytes { buffer in
                var reader = ByteReader(buffer)
                // Either it decodes to something (the chain catches that) or it throws: never a crash.
                _ = try? LogRecord.decode(&reader, previousTimestamp: 0)
            }
        }
    }

    @Test func lz4WithAndWithoutDictionaryRoundTrips() throws {
        var corpus = CorpusGenerator(seed: 8)
        let dictionary = (0..<200).flatMap { _ in corpus.next().data }.prefix(65_536)
        for withDictionary in [false, true] {
            let compressor = LZ4Compressor(dictionary: withDictionary ? Array(dictionary) : nil)
            for size in [0, 1, 100, 4_096, 100_000] {
                let input = (0..<max(1, size / 400 + 1)).flatMap { _ in corpus.next().data }.prefix(size)
                var compressed: [UInt8] = []
                compressor.compress(Array(input), into: &compressed)
                let output = try compressed.withUnsafeBytes {
                    try LZ4Decoder.decompress(
                        $0, rawCount: input.count, dictionary: withDictionary ? Array(dictionary) : nil)
                }
                #expect(output == Array(input))
            }
        }
    }

    @Test func timestampsFormatAndParse() {
        #expect(Timestamp.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(milliseconds: 1_795_813_200_123) == "2026-11-27T21:00:00.123Z")
        #expect(Timestamp.format(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.parse("2026-11-27T21:00:00.123Z") == 1_795_813_200_123)
        #expect(Timestamp.parse("2026-11-27T22:00:00.1234+01:00") == 1_795_813_200_123)
        #expect(Timestamp.parse("2026-11-27T21:00:00Z") == 1_795_813_200_000)
        for bad in [
            "", "2026-11-27", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-27T21:00:00", "yesterday",
            "2026-11-27T21:00:00.Z",
        ] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
        var random = SeededGenerator(seed: 1)
        for _ in 0..<10_000 {
            let value = Int64(random.next() % 4_000_000_000_000)
            #expect(Timestamp.parse(Timestamp.format(milliseconds: value)) == value)
        }
    }

    @Test func jsonEqualityIgnoresSpellingButNotValues() {
        func equal(_ left: String, _ right: String) -> Bool { JSONEquality.equal(Array(left.utf8), Array(right.utf8)) }
        #expect(equal(#"{"a":1,"b":[true,null]}"#, #"{ "b" : [ true, null ], "a" : 1.0 }"#))
        #expect(equal(#"{"a":"é"}"#, #"{"a":"\u00e9"}"#))
        #expect(equal(#"{"n":100}"#, #"{"n":1e2}"#))
        #expect(equal(#"{"n":0}"#, #"{"n":-0.0}"#))
        #expect(!equal(#"{"a":1}"#, #"{"a":2}"#))
        #expect(!equal(#"{"a":[1,2]}"#, #"{"a":[2,1]}"#))
        #expect(!equal(#"{"a":"1"}"#, #"{"a":1}"#))
        #expect(!equal(#"{"a":1}"#, #"{"a":1,"b":1}"#))
    }
}
