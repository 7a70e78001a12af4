import Crypto
import Foundation
import Synchronization
import TidingsStore

/// Verifies JWTs signed with HS256, and nothing else.
///
/// A token is accepted only when: it has three base64url parts; its header names `alg` HS256
/// (and, if present, `typ` JWT) and no `crit`; the HMAC-SHA256 signature matches (compared in
/// constant time by swift-crypto); the claims hold a non-empty string `sub`, a known `role` and
/// a numeric `exp` that has not passed (30 s leeway); an `nbf`, when present, has come. Every
/// failure is the same `unauthorized` to the caller; the reason is only for the server's log.
public struct TokenVerifier: Sendable {
    public struct Rejection: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Tokens longer than this are refused before any decoding.
    public static let tokenBytesMax = 8_192
    public static let leewaySeconds: Int64 = 30

    // Kept as bytes: swift-crypto's SymmetricKey is not Sendable; one is made per use.
    private let secret: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: secret) }

    /// Tokens that verified, so a client's next request skips the decoding and the HMAC; the
    /// time claims are still checked on every use.
    private let verified = VerifiedTokens()

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    public func verify(_ token: String) throws(Rejection) -> Principal {
        try verify(token, now: Int64(Date().timeIntervalSince1970))
    }

    public func verify(_ token: String, now: Int64) throws(Rejection) -> Principal {
        guard token.utf8.count <= Self.tokenBytesMax else { throw Rejection(reason: "token too long") }
        if let known = verified.lookup(token) {
            try Self.checkTimes(expiresAt: known.principal.expiresAt, notBefore: known.notBefore, now: now)
            return known.principal
        }
        let (principal, notBefore) = try verifySignedToken(token)
        try Self.checkTimes(expiresAt: principal.expiresAt, notBefore: notBefore, now: now)
        verified.insert(token, principal: principal, notBefore: notBefore)
        return principal
    }

    private static func checkTimes(expiresAt: Int64, notBefore: Int64?, now: Int64) throws(Rejection) {
        guard now < expiresAt + leewaySeconds else { throw Rejection(reason: "expired") }
        if let notBefore, now + leewaySeconds < notBefore { throw Rejection(reason: "not yet valid") }
    }

    /// Everything but the time checks: the structure, the header, the signature, the claims.
    private func verifySignedToken(_ token: String) throws(Rejection) -> (Principal, notBefore: Int64?) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Rejection(reason: "not three parts") }
        guard let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw Rejection(reason: "not base64url") }
        guard let header = try? JSONValue.parse(headerBytes), header.objectValue != nil else {
            throw Rejection(reason: "header is not a JSON object")
        }
        guard header["alg"]?.stringValue == "HS256" else { throw Rejection(reason: "alg is not HS256") }
        if let type = header["typ"], type.stringValue?.uppercased() != "JWT" {
            throw Rejection(reason: "typ is not JWT")
        }
        guard header["crit"] == nil else { throw Rejection(reason: "crit header is not supported") }
        let signed = Array((parts[0] + "." + parts[1]).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else {
            throw Rejection(reason: "bad signature")
        }
        guard let claims = try? JSONValue.parse(payloadBytes), claims.objectValue != nil else {
            throw Rejection(reason: "claims are not a JSON object")
        }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else { throw Rejection(reason: "sub missing") }
        guard let roleName = claims["role"]?.stringValue, let role = Role(rawValue: roleName) else {
            throw Rejection(reason: "role missing or unknown")
        }
        // NumericDate claims are JSON numbers (not strings, not booleans).
        guard let expiresAt = claims["exp"]?.flooredIntegerValue else { throw Rejection(reason: "exp missing") }
        var notBefore: Int64?
        if let notBeforeClaim = claims["nbf"] {
            guard let value = notBeforeClaim.flooredIntegerValue else { throw Rejection(reason: "nbf is not a number") }
            notBefore = value
        }
        return (Principal(subject: subject, role: role, expiresAt: expiresAt), notBefore)
    }
}

/// A bounded set of tokens that passed verification, by their exact text.
final class VerifiedTokens: Sendable {
    static let capacity = 4_096
    private let entries = Mutex<[String: (principal: Principal, notBefore: Int64?)]>([:])

    func lookup(_ token: String) -> (principal: Principal, notBefore: Int64?)? {
        entries.withLock { $0[token] }
    }

    func insert(_ token: String, principal: Principal, notBefore: Int64?) {
        entries.withLock { entries in
            // Emptied when full: the cost is one more verification per active token.
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = (principal, notBefore)
        }
    }
}

/// Signs HS256 tokens, for `tidings token` and the tests.
public struct TokenSigner: Sendable {
    // Kept as bytes: swift-crypto's SymmetricKey is not Sendable; one is made per use.
    private let secret: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: secret) }

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    public func token(subject: String, role: Role, expiresAt: Int64, extraClaims: [String: Any] = [:]) -> String {
        var claims: [String: Any] = ["sub": subject, "role": role.rawValue, "exp": expiresAt]
        for (name, value) in extraClaims { claims[name] = value }
        return sign(header: ["alg": "HS256", "typ": "JWT"], claims: claims)
    }

    /// Signs any header and claims, for tests that build hostile tokens.
    public func sign(header: [String: Any], claims: [String: Any]) -> String {
        let headerPart = Base64URL.encode(json(header))
        let claimsPart = Base64URL.encode(json(claims))
        let signature = HMAC<SHA256>.authenticationCode(for: Array((headerPart + "." + claimsPart).utf8), using: key)
        return headerPart + "." + claimsPart + "." + Base64URL.encode(Array(signature))
    }

    private func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }
}
