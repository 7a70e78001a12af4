import TidingsStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Paths as plain strings, joined with `/`.
typealias NSStringPath = String

extension String {
    func appending(_ component: String) -> String {
        hasSuffix("/") ? self + component : self + "/" + component
    }
}

enum FileSize {
    /// The size of the file at `path`, 0 when it does not exist.
    static func of(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_size)
    }
}

enum Directories {
    /// SQLite writes the database, its WAL and its shared-memory index beside each other, so a
    /// store needs its directory and files writable; say so plainly instead of letting the
    /// first pragma fail with "unable to open database file".
    static func requireWritable(_ directory: String) throws {
        for path in [directory] + ["", "-wal", "-shm"].map({ directory + "/" + SQLiteStore.databaseFileName + $0 })
        where access(path, F_OK) == 0 && access(path, W_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw StoreError(
                .unavailable,
                "the store is not writable: \(path): \(reason); tidings writes its database, WAL and "
                    + "shared-memory files there: remount it read-write or fix its permissions")
        }
    }

    /// Creates `path` and its missing parents; throws with the system's reason on failure.
    static func create(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError(.unavailable, "cannot use \(path) as the store directory: it is a file")
            }
            try requireWritable(path)
            return
        }
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty && parent != path { try create(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw StoreError(
                .unavailable, "cannot create the store directory \(path): \(String(cString: strerror(errno)))")
        }
    }
}
