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
    /// Creates `path` and its missing parents; throws with the system's reason on failure.
    static func create(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw StoreError(.unavailable, "cannot use \(path) as the store directory: it is a file")
            }
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
