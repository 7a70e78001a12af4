import Synchronization

/// The overlay behind a lock, shared by reference between the writer and the readers (a
/// `Mutex` cannot be copied, and every view needs the same one).
final class OverlayLock: Sendable {
    private let mutex: Mutex<ProjectionOverlay>

    init(_ overlay: sending ProjectionOverlay) {
        mutex = Mutex(overlay)
    }

    func withLock<T>(_ body: (inout ProjectionOverlay) throws -> T) rethrows -> T {
        try mutex.withLock { try body(&$0) }
    }
}
