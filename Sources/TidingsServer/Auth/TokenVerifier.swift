import Crypto
import Foundation
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

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    public func verify(_ token: String) throws(Rejection) -> Principal {
        try verify(token, now: Int64(Date().timeIntervalSince1970))
    }

    public func verify(_ token: String, now: Int64) throws(Rejection) -> Principal {
        guard token.utf8.count <= Self.tokenBytesMax else { throw Rejection(reason: "token too long") }
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
        guard now < expiresAt + Self.leewaySeconds else { throw Rejection(reason: "expired") }
        if let notBeforeClaim = claims["nbf"] {
            guard let notBefore = notBeforeClaim.flooredIntegerValue else {
                throw Rejection(reason: "nbf is not a number")
            }
            guard now + Self.leewaySeconds >= notBefore else { throw Rejection(reason: "not yet valid") }
        }
        return Principal(subject: subject, role: role, expiresAt: expiresAt)
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

/// Base64 with the URL-safe alphabet, without padding (JWT's encoding).
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard
            text.utf8.allSatisfy({ byte in
                (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == 0x2D || byte == 0x5F
            })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        switch standard.utf8.count % 4 {
        case 1: return nil
        case 2: standard += "=="
        case 3: standard += "="
        default: break
        }
        return Data(base64Encoded: standard).map(Array.init)
    }
}
