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
}
