import Foundation

/// Where the server's JWT secret comes from: `TIDINGS_JWT_SECRET`, else the file given with
/// `--jwt-secret-file`, else, for an embedded store, `DIR/jwt-secret`, generated on first start
/// with mode 0600. Nodes on a shared database never generate one: each would sign with its own,
/// and a token from one node would be refused by the next.
public enum JWTSecret {
    public static let environmentVariable = "TIDINGS_JWT_SECRET"
    public static let defaultFileName = "jwt-secret"
    /// Shorter secrets are refused: HS256 wants at least 256 bits of key.
    public static let bytesMin = 32

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// The secret's bytes, creating `DIR/jwt-secret` in `generatedIn` when nothing else provides
    /// one; with `generatedIn` nil, a missing secret is an error that says how to give one.
    public static func load(generatedIn dataDirectory: String?, secretFile: String?) throws -> [UInt8] {
        if let value = ProcessInfo.processInfo.environment[environmentVariable] {
            return try checked(Array(value.utf8), source: environmentVariable)
        }
        if let secretFile {
            guard let text = FileManager.default.contents(atPath: secretFile) else {
                throw Problem(description: "cannot read the JWT secret file \(secretFile)")
            }
            return try checked(trimmed(Array(text)), source: secretFile)
        }
        guard let dataDirectory else {
            throw Problem(
                description:
                    "no JWT secret: set \(environmentVariable) or pass --jwt-secret-file FILE, the same on every node")
        }
        let path =
            dataDirectory.hasSuffix("/") ? dataDirectory + defaultFileName : dataDirectory + "/" + defaultFileName
        if let text = FileManager.default.contents(atPath: path) {
            return try checked(trimmed(Array(text)), source: path)
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var random = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        else { throw Problem(description: "cannot write the JWT secret file \(path)") }
        return Array(secret.utf8)
    }

    private static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        while let last = bytes.last, last == 10 || last == 13 || last == 32 || last == 9 { bytes.removeLast() }
        return bytes
    }

    private static func checked(_ bytes: [UInt8], source: String) throws -> [UInt8] {
        guard bytes.count >= bytesMin else {
            throw Problem(
                description: "the JWT secret from \(source) is \(bytes.count) bytes; at least \(bytesMin) are needed")
        }
        return bytes
    }
}
