package import Synchronization

/// The answer to a read request (`POST /v1/users/{user_id}/read` and WebSocket `read`).
public struct ReadOutcome: Sendable, Equatable {
    /// Notification ids this request changed: in request order, or for "all" oldest first.
    public let read: [String]
    /// The user's counts after the request.
    public let counts: InboxCounts
    public var unreadCount: Int64 { counts.unread }
    /// The head of the user stream after the request.
    public let cursor: String
    /// The stream_seq of that head.
    public let headStreamSeq: Int64
    /// The seq of the last event the request appended, if any (live delivery waits for it).
    public let lastSeq: Int64?
    package init(read: [String], counts: InboxCounts, cursor: String, headStreamSeq: Int64, lastSeq: Int64? = nil) {
        self.read = read
        self.counts = counts
        self.cursor = cursor
        self.headStreamSeq = headStreamSeq
        self.lastSeq = lastSeq
    }
}

/// Store-wide figures for `tidings stats` and `GET /v1/stats`.
public struct StoreStats: Sendable, Equatable {
    public let events: Int64
    public let users: Int64
    public let blocks: Int64
    /// Size of the events as appended (compact JSON).
    public let rawBytes: Int64
    /// Size of the log as stored: compressed blocks with their check bytes, and the tail.
    public let storedBytes: Int64
    /// `rawBytes / storedBytes`, 1.0 for an empty log.
    public var compressionRatio: Double { storedBytes == 0 ? 1.0 : Double(rawBytes) / Double(storedBytes) }
    /// Size of the database file and its write-ahead log.
    public let fileBytes: Int64
    /// The newest event and its chain hash's check bytes: the anchor of the head cursor.
    public let head: CursorAnchor
    package init(
        events: Int64, users: Int64, blocks: Int64, rawBytes: Int64, storedBytes: Int64, fileBytes: Int64,
        head: CursorAnchor
    ) {
        self.head = head
        self.events = events
        self.users = users
        self.blocks = blocks
        self.rawBytes = rawBytes
        self.storedBytes = storedBytes
        self.fileBytes = fileBytes
    }
}

/// Progress of a projection rebuild.
public struct RebuildProgress: Sendable {
    /// The three steps of a rebuild, in order. `processed` and `total` count within a step:
    /// events while reading, rows while writing, events again while swapping.
    public enum Phase: String, Sendable {
        /// Reading the log and computing the projection in memory.
        case reading
        /// Writing the new tables beside the live ones.
        case writing
        /// Catching up with appends made meanwhile and swapping the tables in.
        case swapping
    }

    public let phase: Phase
    public let processed: Int64
    public let total: Int64
    package init(phase: Phase, processed: Int64, total: Int64) {
        self.phase = phase
        self.processed = processed
        self.total = total
    }
}

/// The state of the online rebuild job (`GET /v1/admin/projections/rebuild`).
public struct RebuildJob: Sendable, Equatable {
    public enum State: String, Sendable {
        case running, done, failed
    }

    public var state: State
    /// The step the job is in (the last one it reached, once it ended); `processed` and `total`
    /// count within it.
    public var phase: RebuildProgress.Phase
    public var processed: Int64
    public var total: Int64
    public var startedAt: Int64
    public var finishedAt: Int64?
    public var error: String?
    package init(
        state: State, phase: RebuildProgress.Phase, processed: Int64, total: Int64, startedAt: Int64,
        finishedAt: Int64? = nil, error: String? = nil
    ) {
        self.state = state
        self.phase = phase
        self.processed = processed
        self.total = total
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
    }
}

/// A difference between the live projection and one rebuilt from the log.
public struct ProjectionMismatch: Sendable, Equatable {
    public let userID: String
    /// `stream_head`, `unread_count`, `unread` or `events`.
    public let field: String
    public let live: String
    public let rebuilt: String
    package init(userID: String, field: String, live: String, rebuilt: String) {
        self.userID = userID
        self.field = field
        self.live = live
        self.rebuilt = rebuilt
    }
}

public struct ProjectionVerification: Sendable {
    public let ok: Bool
    public let usersChecked: Int
    public let mismatches: [ProjectionMismatch]

    package init(ok: Bool, usersChecked: Int, mismatches: [ProjectionMismatch]) {
        self.ok = ok
        self.usersChecked = usersChecked
        self.mismatches = mismatches
    }

}

/// What `verifyLog` found.
public struct LogVerification: Sendable, Equatable {
    public let ok: Bool
    public let events: Int64
    public let blocks: Int64
    public let headSeq: Int64
    /// Recomputed from the events when `ok`; otherwise the stored head hash, not to be trusted.
    public let headHash: String
    public let firstBadSeq: Int64?
    /// What is wrong at `firstBadSeq`, in words.
    public let problem: String?
    /// With a checkpoint to check: whether today's log still holds that prefix unchanged.
    public let checkpointOK: Bool?
    package init(
        ok: Bool, events: Int64, blocks: Int64, headSeq: Int64, headHash: String, firstBadSeq: Int64? = nil,
        problem: String? = nil, checkpointOK: Bool? = nil
    ) {
        self.ok = ok
        self.events = events
        self.blocks = blocks
        self.headSeq = headSeq
        self.headHash = headHash
        self.firstBadSeq = firstBadSeq
        self.problem = problem
        self.checkpointOK = checkpointOK
    }
}

/// The online rebuild job of a store, shared by whoever starts it and whoever asks.
package final class RebuildJobState: Sendable {
    package let job = Mutex<RebuildJob?>(nil)

    package init() {}

    /// Starts `rebuild` in the background as the store's online rebuild job, reporting its
    /// progress; throws `conflict` while one runs.
    package func start(
        now: @escaping @Sendable () -> Int64,
        rebuild: @escaping @Sendable (_ progress: @escaping @Sendable (RebuildProgress) -> Void) async throws -> Void
    ) throws -> RebuildJob {
        let started = try job.withLock { job -> RebuildJob in
            if let job, job.state == .running {
                throw StoreError.conflict("a projection rebuild is already running")
            }
            let started = RebuildJob(
                state: .running, phase: .reading, processed: 0, total: 0, startedAt: now(), finishedAt: nil,
                error: nil)
            job = started
            return started
        }
        Task.detached {
            do {
                try await rebuild { progress in
                    self.job.withLock {
                        $0?.phase = progress.phase
                        $0?.processed = progress.processed
                        $0?.total = progress.total
                    }
                }
                self.job.withLock {
                    $0?.state = .done
                    $0?.finishedAt = now()
                }
            } catch {
                self.job.withLock {
                    $0?.state = .failed
                    $0?.finishedAt = now()
                    $0?.error = "\(error)"
                }
            }
        }
        return started
    }
}
