import Synchronization
import TidingsStore

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

extension OverlayLock {
    /// Appends the projection's effect of an event already in the log, computed against `view`
    /// (the state just before it).
    func replay(seq: Int64, record: LogRecord, view: ProjectionView) throws {
        let key = record.type.namesNotification ? CompactIdentifier.key(record.notificationID) : []
        let before = try view.head(user: record.userNo)
        let options =
            EventOptions.carried(by: record.type) ? EventOptions(type: record.type, data: try record.data()) : .none
        let effect = try ProjectionReducer.effect(
            ProjectionReducer.Input(
                seq: seq, userNo: record.userNo, type: record.type, notification: key, upToSeq: record.upToSeq,
                options: options, countsBefore: before.counts),
            view: view)
        withLock {
            $0.append(
                OverlayEvent(
                    seq: seq, userNo: record.userNo, streamSeq: record.streamSeq, type: record.type,
                    countsAfter: effect.countsAfter, notification: record.type == .created ? key : [],
                    changes: effect.changes, explicitID: record.explicitID))
        }
    }
}
