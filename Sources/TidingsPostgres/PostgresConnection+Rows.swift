import Logging
import NIOCore
import PostgresNIO
import TidingsStore

extension PostgresConnection {
    /// Every row of `query`, decoded as `types`.
    func rows<each Column: PostgresDecodable & Sendable>(
        _ query: PostgresQuery, as types: (repeat each Column).Type, logger: Logger
    ) async throws -> [(repeat each Column)] {
        let sequence = try await self.query(query, logger: logger)
        var out: [(repeat each Column)] = []
        for try await row in sequence.decode(types) { out.append(row) }
        return out
    }

    /// Runs a statement that returns no rows the caller needs.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        let sequence = try await self.query(query, logger: logger)
        for try await _ in sequence {}
    }

    /// Runs `body` in one transaction begun with `begin` (for example a read-only snapshot),
    /// rolling back when it throws.
    func transaction<T: Sendable>(
        _ begin: PostgresQuery = "BEGIN", logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await run(begin, logger: logger)
        do {
            let value = try await body(self)
            try await run("COMMIT", logger: logger)
            return value
        } catch {
            try? await run("ROLLBACK", logger: logger)
            throw error
        }
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}

extension Array where Element == UInt8 {
    var buffer: ByteBuffer { ByteBuffer(bytes: self) }
}
