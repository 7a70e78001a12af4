/// The roles of PROTOCOL.md, with what each may do.
public enum Role: String, Sendable, CaseIterable {
    case user, publisher, auditor, admin

    var mayAppend: Bool { self == .publisher || self == .admin }
    var mayAudit: Bool { self == .auditor || self == .admin }
}

/// Who a verified token speaks for.
public struct Principal: Sendable, Equatable {
    public let subject: String
    public let role: Role
    /// Seconds since the Unix epoch.
    public let expiresAt: Int64

    public init(subject: String, role: Role, expiresAt: Int64) {
        self.subject = subject
        self.role = role
        self.expiresAt = expiresAt
    }

    /// May read this user's stream, events and unread state.
    func mayRead(user: String) -> Bool {
        role.mayAudit || (role == .user && subject == user)
    }

    /// May change the state of this user's notifications (read them, archive them, ...).
    func mayMark(user: String) -> Bool {
        role == .admin || role == .publisher || (role == .user && subject == user)
    }
}
