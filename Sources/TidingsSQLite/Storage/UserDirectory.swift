import Synchronization
import TidingsStore

/// The mapping between user ids and the integers records and projection tables use for them.
/// The mapping is append-only in the database, so a cached pair never goes stale; only pairs
/// known to be committed are cached.
final class UserDirectory: Sendable {
    /// Past this many cached users the cache starts over, so memory stays bounded however many
    /// users a store has.
    static let cachedUsersMax = 2_000_000

    private struct Cache {
        var numbers: [String: Int64] = [:]
        var names: [Int64: String] = [:]
    }

    private let cache = Mutex(Cache())

    func cachedNumber(_ userID: String) -> Int64? {
        cache.withLock { $0.numbers[userID] }
    }

    func number(_ userID: String, database: Database) throws -> Int64? {
        if let number = cachedNumber(userID) { return number }
        let statement = try database.cached("SELECT user_no FROM users WHERE user_id = ?1")
        statement.bind(1, userID)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        let number = statement.int64(0)
        remember(userID, number)
        return number
    }

    func name(_ userNo: Int64, database: Database) throws -> String {
        if let name = cache.withLock({ $0.names[userNo] }) { return name }
        let statement = try database.cached("SELECT user_id FROM users WHERE user_no = ?1")
        statement.bind(1, userNo)
        defer { statement.reset() }
        guard try statement.step() else {
            throw StoreError(.internal, "the log names user number \(userNo), which the users table lacks")
        }
        let name = statement.string(0)
        remember(name, userNo)
        return name
    }

    func remember(_ userID: String, _ userNo: Int64) {
        cache.withLock { cache in
            if cache.numbers.count >= Self.cachedUsersMax { cache = Cache() }
            cache.numbers[userID] = userNo
            cache.names[userNo] = userID
        }
    }
}
