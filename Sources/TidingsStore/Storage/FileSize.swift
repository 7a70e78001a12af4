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
