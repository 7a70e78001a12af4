import Foundation
import TidingsStore

@testable import TidingsServer

/// Tokens an attacker might try, each one to be refused with 401 (or close 4401) and never
/// echoed: forged algorithms, wrong keys, bad times, missing or escalated claims, sheer size.
enum AttackTokens {
    /// (name, token) pairs; every token claims the admin role for subject `ops`.
    static func all() -> [(String, String)] {
        let signer = TokenSigner(secret: ServerHarness.secret)
        let other = TokenSigner(secret: Array("another-secret-that-is-32-bytes-or-more".utf8))
        let now = Int64(Date().timeIntervalSince1970)
        let claims: [String: Any] = ["sub": "ops", "role": "admin", "exp": now + 600]
        let noneHeader: String = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let noneClaims: String = Base64URL.encode(
            Array(#"{"sub":"ops","role":"admin","exp":\#(now + 600)}"#.utf8))
        let unsigned = noneHeader + "." + noneClaims + "."
        return [
            ("garbage", "not-a-jwt"),
            ("wrong key", other.token(subject: "ops", role: .admin, expiresAt: now + 600)),
            ("expired", signer.token(subject: "ops", role: .admin, expiresAt: now - 31)),
            ("alg none", unsigned),
            ("alg RS256", signer.sign(header: ["alg": "RS256", "typ": "JWT"], claims: claims)),
            ("alg HS512", signer.sign(header: ["alg": "HS512"], claims: claims)),
            ("missing exp", signer.sign(header: ["alg": "HS256"], claims: ["sub": "ops", "role": "admin"])),
            ("missing sub", signer.sign(header: ["alg": "HS256"], claims: ["role": "admin", "exp": now + 600])),
            (
                "unknown role",
                signer.token(subject: "ops", role: .admin, expiresAt: now + 600, extraClaims: ["role": "root"])
            ),
            (
                "not yet valid",
                signer.token(subject: "ops", role: .admin, expiresAt: now + 600, extraClaims: ["nbf": now + 120])
            ),
            (
                "exp as string",
                signer.sign(header: ["alg": "HS256"], claims: ["sub": "ops", "role": "admin", "exp": "\(now + 600)"])
            ),
            ("huge", String(repeating: "a", count: 10_000)),
            (
                "escalated role, unsigned",
                Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "."
                    + Base64URL.encode(Array(#"{"sub":"alice","role":"admin","exp":\#(now + 600)}"#.utf8))
                    + "."
            ),
            (
                "escalated role, resigned with a user token's signature",
                escalated(signer.token(subject: "alice", role: .user, expiresAt: now + 600), now: now)
            ),
            ("empty", ""),
            ("two dots", ".."),
            ("huge but shaped", "eyJ" + String(repeating: "A", count: 12_000) + ".e30.sig"),
        ]
    }

    /// A real user token whose claims are swapped for an admin's, keeping the old signature.
    static func escalated(_ token: String, now: Int64) -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        let claims = Base64URL.encode(Array(#"{"sub":"alice","role":"admin","exp":\#(now + 600)}"#.utf8))
        return parts[0] + "." + claims + "." + parts[2]
    }
}
