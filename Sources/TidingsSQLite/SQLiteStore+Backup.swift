import Foundation
import Synchronization
import TidingsStore

/// What a backup holds, or what a restore put in place, once verified.
public struct BackupReport: Sendable, Equatable {
    public let events: Int64
    public let headSeq: Int64
    public let headHash: String
    /// The epoch cursors of the restored store carry (a restore makes a new one).
    public let epoch: UInt64
    /// Where a restore set the store it replaced aside, if it replaced one.
    public let setAside: String?
}

extension SQLiteStore {
    /// Copies the store in `directory` to the single file `file`, as of one commit, while other
    /// processes go on appending: `VACUUM INTO` reads one snapshot, so every event committed
    /// before it began is in the copy and nothing committed after it, or half of a commit, is.
    /// The copy is written into the folder `file.partial`, opened there as a store and verified
    /// (chain, blocks, projection), and only then takes its name. `progress` gets bytes written
    /// of bytes expected, then events verified of events.
    public static func backup(
        directory: String, to file: String, progress: (@Sendable (_ step: String, Int64, Int64) -> Void)? = nil
    ) async throws -> BackupReport {
        let source = (directory as NSString).appendingPathComponent(databaseFileName)
        guard FileManager.default.fileExists(atPath: source) else {
            throw StoreError(.badRequest, "\(directory) holds no store (no \(databaseFileName))")
        }
        guard !FileManager.default.fileExists(atPath: file) else {
            throw StoreError(.badRequest, "\(file) exists; back up to a new file")
        }
        let partial = file + ".partial"
        let copy = (partial as NSString).appendingPathComponent(databaseFileName)
        try? FileManager.default.removeItem(atPath: partial)
        try Directories.create(partial)
        defer { try? FileManager.default.removeItem(atPath: partial) }
        try await onThread {
            let database = try Database(path: source, mode: .readOnly, busyTimeoutMilliseconds: 10_000)
            defer { database.close() }
            let expected = try usedBytes(database)
            let watcher = FileGrowthWatcher(path: copy, expected: expected) { progress?("copying", $0, $1) }
            defer { watcher.stop() }
            try database.execute("VACUUM INTO '\(copy.replacingOccurrences(of: "'", with: "''"))'")
        }
        // Verified where it was written: a closed store is one file again (its WAL checkpointed
        // and removed), which then takes the backup's name.
        let report = try await verifyStore(in: partial, named: file, progress: progress)
        try FileManager.default.moveItem(atPath: copy, toPath: file)
        return report
    }

    /// Replaces the store in `directory` with the backup `file`, once the backup is verified,
    /// under a new epoch: every cursor made before the restore is told apart (`reset`), never
    /// resumed into a history that may differ from the one it was made in. Refuses while any
    /// process has the store open, and refuses to replace an existing store unless `replace`,
    /// which sets it aside as `tidings.sqlite.before-restore-<time>`.
    public static func restore(
        from file: String, into directory: String, replace: Bool,
        progress: (@Sendable (_ step: String, Int64, Int64) -> Void)? = nil
    ) async throws -> BackupReport {
        guard FileManager.default.fileExists(atPath: file) else {
            throw StoreError(.badRequest, "\(file) does not exist")
        }
        let created = !FileManager.default.fileExists(atPath: directory)
        try Directories.create(directory)
        do {
            return try await restoreNow(from: file, into: directory, replace: replace, progress: progress)
        } catch {
            if created { try? FileManager.default.removeItem(atPath: directory) }
            throw error
        }
    }

    private static func restoreNow(
        from file: String, into directory: String, replace: Bool,
        progress: (@Sendable (_ step: String, Int64, Int64) -> Void)?
    ) async throws -> BackupReport {
        let target = (directory as NSString).appendingPathComponent(databaseFileName)
        if let holder = processHoldingOpen(target) {
            throw StoreError(
                .unavailable, "process \(holder) has the store in \(directory) open; stop it (tidings serve?) first")
        }
        let exists = FileManager.default.fileExists(atPath: target)
        if exists && !replace {
            throw StoreError(
                .badRequest, "\(directory) already holds a store; pass --replace to set it aside and restore over it")
        }
        let scratch = (directory as NSString).appendingPathComponent(".restore-\(UUID().uuidString)")
        try Directories.create(scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let copy = (scratch as NSString).appendingPathComponent(databaseFileName)
        try FileManager.default.copyItem(atPath: file, toPath: copy)
        let verified = try await verifyStore(in: scratch, named: file, progress: progress)
        let epoch = try await onThread { try renewEpoch(copy) }
        var setAside: String?
        if exists {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let aside = target + ".before-restore-" + stamp
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: target + suffix) {
                try FileManager.default.moveItem(atPath: target + suffix, toPath: aside + suffix)
            }
            setAside = aside
        }
        try FileManager.default.moveItem(atPath: copy, toPath: target)
        return BackupReport(
            events: verified.events, headSeq: verified.headSeq, headHash: verified.headHash, epoch: epoch,
            setAside: setAside)
    }

    /// Opens the store in `directory` (a scratch copy of `name`) and checks its whole chain,
    /// every block and the projection against a rebuild; throws naming what is wrong.
    private static func verifyStore(
        in directory: String, named name: String, progress: (@Sendable (String, Int64, Int64) -> Void)?
    ) async throws -> BackupReport {
        var options = StoreOptions()
        options.durability = .normal
        let store: SQLiteStore
        do {
            store = try await SQLiteStore.open(directory: directory, options: options)
        } catch {
            // The scratch copy's path and the advice to verify it mean nothing to the operator.
            var reason = Self.reason(error)
            if let damaged = reason.range(of: " is damaged: ") {
                reason = String(reason[damaged.upperBound...].prefix { $0 != ";" })
            }
            throw StoreError(.badRequest, "\(name) is not a whole Tidings backup: \(reason)")
        }
        defer { store.close() }
        let log = try await store.verifyLog { progress?("verifying", $0, $1) }
        guard log.ok else {
            throw StoreError(
                .badRequest,
                "\(name) is damaged at seq \(log.firstBadSeq ?? 0): \(log.problem ?? "the chain does not verify")")
        }
        let projection = try await store.verifyProjections()
        guard projection.ok else {
            throw StoreError(
                .badRequest,
                "\(name) holds a projection that does not match its log (\(projection.mismatches.count) places)")
        }
        return BackupReport(
            events: log.events, headSeq: log.headSeq, headHash: log.headHash, epoch: store.epoch, setAside: nil)
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? StoreError { return error.message }
        if let error = error as? SQLiteError { return error.message }
        return "\(error)"
    }

    /// Gives the database at `path` a new epoch for cursors, keeping the one its derived event
    /// ids were made from as `id_epoch`. Returns the new epoch.
    private static func renewEpoch(_ path: String) throws -> UInt64 {
        let database = try Database(path: path, mode: .readWrite)
        defer { database.close() }
        return try database.transaction(.immediate) {
            let read = try database.prepare("SELECT value FROM meta WHERE key = 'epoch'")
            guard try read.step() else { throw StoreError(.internal, "\(path) has no epoch") }
            let old = read.int64(0)
            read.reset()
            var epoch = UInt64.random(in: 1...UInt64.max)
            while Int64(bitPattern: epoch) == old { epoch = UInt64.random(in: 1...UInt64.max) }
            try database.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('id_epoch', \(old))")
            try database.execute("UPDATE meta SET value = \(Int64(bitPattern: epoch)) WHERE key = 'epoch'")
            return epoch
        }
    }

    /// Bytes of the database that hold data (a copy leaves the free pages out).
    private static func usedBytes(_ database: Database) throws -> Int64 {
        func pragma(_ name: String) throws -> Int64 {
            let statement = try database.prepare("PRAGMA \(name)")
            _ = try statement.step()
            return statement.int64(0)
        }
        return try (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")
    }

    /// The pid of a process that has the database at `path` open, if one has. Every SQLite
    /// connection to a database in WAL mode holds a read lock on one byte of its `-shm` file
    /// (the "DMS" byte, at 128) for as long as it is open; a process that holds it is found
    /// with F_GETLK.
    static func processHoldingOpen(_ path: String) -> Int32? {
        let descriptor = Foundation.open(path + "-shm", O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { Foundation.close(descriptor) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 128
        lock.l_len = 1
        guard fcntl(descriptor, F_GETLK, &lock) == 0, lock.l_type != Int16(F_UNLCK) else { return nil }
        return lock.l_pid
    }

    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "tidings.backup").async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Reports a file's size as it grows, every 100 ms on a thread of its own, until stopped.
private final class FileGrowthWatcher: Sendable {
    private let stopped = Atomic(false)

    init(path: String, expected: Int64, report: @escaping @Sendable (Int64, Int64) -> Void) {
        Thread { [self] in
            while !self.stopped.load(ordering: .relaxed) {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
                report(min(size, expected), expected)
                Thread.sleep(forTimeInterval: 0.1)
            }
        }.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
