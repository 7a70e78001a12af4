import Foundation
import Testing
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsStore

@Suite struct DecoderTests {
    @Test func quotedStringsReadBackAsTheyWere() throws {
        var random = SeededGenerator(seed: 5)
        let pieces = ["a", "é", "✓", "𝄞", "\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{1F}", "\u{7F}", " ", "/"]
        for _ in 0..<500 {
            let text = (0..<Int(random.next() % 20)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }
                .joined()
            var out: [UInt8] = []
            JSONText.appendQuoted(text, to: &out)
            #expect(out.allSatisfy { $0 >= 0x20 }, "no raw control bytes in \(text.debugDescription)")
            #expect(try JSONValue.parse(out).stringValue == text)
            var viaCollection: [UInt8] = []
            JSONText.appendQuoted(Array(text.utf8)[...], to: &viaCollection)
            #expect(viaCollection == out)
        }
    }

    @Test func decodesOneEventOrABatch() throws {
        let one = try EventDecoder.decodeAppendBody(
            Array(#" {"type":"notification.created","user_id":"alice","id":"e1","data":{"notification_id":"n"}} "#.utf8)
        )
        #expect(one == [NewEvent(type: .created, userID: "alice", id: "e1", data: #"{"notification_id":"n"}"#)])
        let batch = try EventDecoder.decodeAppendBody(
            Array(
                #"{"events":[{"type":"notification.read","user_id":"a","data":{"notification_id":"n"}},{"type":"notification.read_all","user_id":"b","data":{}}]}"#
                    .utf8))
        #expect(batch.map(\.userID) == ["a", "b"])
    }

    static let badBodies: [(String, StoreError.Code, String, Int?)] = [
        ("", .badRequest, "body must be a JSON object: one event or {\"events\":[...]}", nil),
        ("[]", .badRequest, "body must be a JSON object: one event or {\"events\":[...]}", nil),
        (#"{"events":[]}"#, .badRequest, "events must not be empty", nil),
        (#"{"events":{}}"#, .badRequest, "events must be an array", nil),
        (#"{"events":[1]}"#, .badRequest, "an event must be a JSON object", 0),
        (
            #"{"events":[{"type":"x","user_id":"u","data":{}}],"extra":1}"#, .badRequest,
            "a batch body has only the field events", nil
        ),
        (
            #"{"type":"notification.read","user_id":"u","data":{},"colour":1}"#, .badRequest,
            "colour is not a field of an event (expected type, user_id, id, data)", 0
        ),
        (#"{"type":"notification.read","user_id":"u"}"#, .badRequest, "data is required", 0),
        (#"{"type":"notification.read","data":{}}"#, .badRequest, "user_id is required", 0),
        (#"{"user_id":"u","data":{}}"#, .badRequest, "type is required", 0),
        (#"{"type":1,"user_id":"u","data":{}}"#, .badRequest, "type must be a string", 0),
        (#"{"type":"t","user_id":"u","data":"x"}"#, .badRequest, "data must be a JSON object", 0),
        (#"{"type":"t","type":"t","user_id":"u","data":{}}"#, .badRequest, "type appears twice", 0),
        (
            #"{"type":"t","user_id":"u","data":{}"#, .badRequest,
            "body is not valid JSON: unterminated object at byte 35", nil
        ),
        (
            #"{"type":"t","user_id":"u","data":{}} x"#, .badRequest,
            "body is not valid JSON: unexpected data after the JSON value at byte 37", nil
        ),
        (
            #"{"events":[{"type":"t","user_id":"u","data":{}},{"type":"t","user_id":"u"}]}"#, .badRequest,
            "data is required", 1
        ),
    ]

    @Test(arguments: badBodies.indices)
    func badBodiesNameTheProblem(_ index: Int) {
        let (body, code, message, eventIndex) = Self.badBodies[index]
        do {
            _ = try EventDecoder.decodeAppendBody(Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.code == code)
            #expect(error.message == message)
            #expect(error.index == eventIndex)
        }
    }

    @Test func batchSizeLimitsComeBeforeShapeErrors() {
        let good = #"{"type":"notification.read","user_id":"u","data":{"notification_id":"n"}}"#
        let tooMany = #"{"events":[1,"# + Array(repeating: good, count: 1_000).joined(separator: ",") + "]}"
        #expect(throws: StoreError(.payloadTooLarge, "a batch holds at most 1000 events, not 1001")) {
            _ = try EventDecoder.decodeAppendBody(Array(tooMany.utf8))
        }
        let large =
            #"{"type":"notification.created","user_id":"u","data":{"notification_id":"n","body":"\#(String(repeating: "x", count: 66_000))"}}"#
        do {
            _ = try EventDecoder.decodeAppendBody(Array(#"{"events":[1,\#(large)]}"#.utf8))
            Issue.record("accepted an oversized event")
        } catch {
            #expect(error.code == .payloadTooLarge)
            #expect(error.index == 1)
        }
    }

    /// Mutated corpus events: the scanner never crashes, and what it accepts it copies out as
    /// compact JSON denoting the same value (Foundation's parser is the oracle).
    @Test func scannerAgreesWithFoundationOnMutatedInput() throws {
        var corpus = CorpusGenerator(seed: 21)
        var random = SeededGenerator(seed: 22)
        let interesting: [UInt8] =
            Array("{}[]\",:\\ 0123456789.eE+-tfnu\u{7F}".utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes = corpus.next().json
            for _ in 0..<Int(random.next() % 3) + 1 {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[position] = interesting[Int(random.next() % UInt64(interesting.count))]
                case 1: bytes.remove(at: position)
                default: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position)
                }
            }
            var compact: [UInt8] = []
            let ours: Bool = bytes.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                guard (try? scanner.scanValue(into: &compact)) != nil else { return false }
                return (try? scanner.expectEnd()) != nil
            }
            guard ours else { continue }
            accepted += 1
            let original = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            let copied = try JSONSerialization.jsonObject(with: Data(compact), options: [.fragmentsAllowed])
            #expect(NSDictionary(dictionary: ["v": original]) == NSDictionary(dictionary: ["v": copied]))
            #expect(!compact.contains(UInt8(ascii: "\n")))
        }
        #expect(accepted > 1_000)
    }

    @Test func scannerRejectsWhatRFC8259Rejects() {
        let bad = [
            "{\"a\":1,}", "[1,]", "01", "1.", ".5", "-", "1e", "+1", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "tru",
            "nul",
            "{\"a\" 1}", "{1:2}", "\"a", "[", "\u{0}", "\"\u{1}\"", "NaN", "Infinity",
        ]
        for text in bad {
            var compact: [UInt8] = []
            let accepted = Array(text.utf8).withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                return (try? scanner.scanValue(into: &compact)) != nil && (try? scanner.expectEnd()) != nil
            }
            #expect(!accepted, "\(text)")
        }
        for invalidUTF8 in [
            [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
        ] as [[UInt8]] {
            var compact: [UInt8] = []
            let accepted = invalidUTF8.withUnsafeBytes { buffer in
                var scanner = JSONScanner(buffer)
                return (try? scanner.scanValue(into: &compact)) != nil
            }
            #expect(!accepted)
        }
    }
}

@Suite struct SchemaTests {
    @Test func newStoreHasTheLatestSchemaAndRefusesANewerOne() async throws {
        let temporary = try await TemporaryStore()
        temporary.store.close()
        try withDatabase(temporary.databasePath) { database in
            let statement = try database.prepare("PRAGMA user_version")
            _ = try statement.step()
            #expect(statement.int(0) == Schema.latestVersion)
            statement.reset()
            try database.execute("PRAGMA user_version = \(Schema.latestVersion + 1)")
        }
        do {
            try await temporary.reopen()
            Issue.record("opened a store with a newer schema")
        } catch let error as StoreError {
            #expect(error.message.contains("is newer than this tidings"))
        }
        try withDatabase(temporary.databasePath) { try $0.execute("PRAGMA user_version = \(Schema.latestVersion)") }
        try await temporary.reopen()
    }

    @Test func migrationsRunOnceAndKeepData() async throws {
        let temporary = try await TemporaryStore()
        _ = try await temporary.store.append([created("alice", "n-1")])
        try await temporary.reopen()
        try await temporary.reopen()
        #expect(try await temporary.store.headSeq() == 1)
    }
}

@Suite struct IntegralNumberTests {
    @Test func wholeNumbersCountHoweverWritten() {
        let cases: [(String, Int64?)] = [
            ("211", 211), ("211.0", 211), ("2.11e2", 211), ("2110E-1", 211), ("0.0", 0), ("-0", 0), ("-3.00", -3),
            ("1e3", 1_000), ("9223372036854775807", .max), ("9223372036854775807.0", .max),
            ("9223372036854775808", nil), ("1e19", nil), ("211.5", nil), ("2.115e2", nil), ("1e-1", nil),
            ("1e400", nil), ("1e401", nil), ("", nil), ("-", nil), (".", nil), ("1.2.3", nil), ("1e", nil),
        ]
        for (text, expected) in cases {
            #expect(JSONScanner.integralValue(Array(text.utf8)[...]) == expected, "\(text)")
        }
    }
}
