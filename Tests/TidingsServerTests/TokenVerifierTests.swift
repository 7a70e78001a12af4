import Testing

@testable import TidingsServer

@Suite struct TokenVerifierTests {
    static let secret = Array("a-secret-of-at-least-thirty-two-bytes!!".utf8)

    @Test func aVerifiedTokenIsStillCheckedForTimeOnEveryUse() throws {
        let verifier = TokenVerifier(secret: Self.secret)
        let signer = TokenSigner(secret: Self.secret)
        let token = signer.token(subject: "alice", role: .user, expiresAt: 1_000, extraClaims: ["nbf": 500])
        #expect(throws: TokenVerifier.Rejection(reason: "not yet valid")) { try verifier.verify(token, now: 400) }
        #expect(try verifier.verify(token, now: 600).subject == "alice")
        // Now cached: the time claims still hold it to its window.
        #expect(try verifier.verify(token, now: 1_020).subject == "alice")
        #expect(throws: TokenVerifier.Rejection(reason: "expired")) { try verifier.verify(token, now: 1_030) }
        #expect(throws: TokenVerifier.Rejection(reason: "not yet valid")) { try verifier.verify(token, now: 400) }
        // A token differing by one character is verified afresh, not taken from the cache.
        var tampered = Array(token.utf8)
        tampered[tampered.count - 2] =
            tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: TokenVerifier.Rejection(reason: "bad signature")) {
            try verifier.verify(String(decoding: tampered, as: UTF8.self), now: 600)
        }
    }

    @Test func bearerCredentialsAreReadFromTheHeaderValue() {
        let cases: [(String, String?)] = [
            ("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer abc", "abc"), ("BEARER abc", "abc"),
            ("Bearer  \tabc \t", "abc"), ("Bearer ", ""), ("Bearer", nil), ("Basic YTpi", nil),
            ("Bearerx abc", nil), ("Bear abc", nil), ("", nil), (" Bearer abc", nil), ("Béarer abc", nil),
            ("Bearer a b", "a b"),
        ]
        for (header, token) in cases {
            #expect(BearerCredential.token(from: header) == token, "\(header)")
        }
    }

    @Test func contentTypesNameJSONWhateverTheirCaseAndParameters() {
        for value in [
            "application/json", "Application/JSON", "application/json; charset=utf-8", " application/json ;x=y",
            "APPLICATION/JSON\t",
        ] {
            #expect(HeaderBytes.isJSON(value), "\(value)")
        }
        for value in [
            "", "application/jsonx", "text/json", "application/json-seq", "application/xjson", "applicationjson",
        ] {
            #expect(!HeaderBytes.isJSON(value), "\(value)")
        }
    }
}
