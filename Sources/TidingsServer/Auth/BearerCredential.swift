/// The token in an `Authorization: Bearer <token>` value, read from its UTF-8 bytes: every
/// HTTP request and every stream upgrade goes through here, and splitting and trimming it with
/// Foundation (through UTF-16) cost 5% of the server's CPU under single appends.
enum BearerCredential {
    /// The token (the scheme matched without regard to case, spaces and tabs around the token
    /// dropped); nil for another scheme or a value without one.
    static func token(from header: String) -> String? {
        let bytes = header.utf8
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return nil }
        let scheme = bytes[..<space]
        guard HeaderBytes.equalIgnoringASCIICase(scheme, "bearer") else { return nil }
        return String(Substring(HeaderBytes.trimmed(bytes[bytes.index(after: space)...])))
    }
}
