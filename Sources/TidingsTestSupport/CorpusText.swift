/// The vocabulary of the benchmark corpus: notification kinds with their weights and title
/// templates, and the words bodies are made of. Realistic enough that compression figures mean
/// something: templated, repetitive text with unique ids sprinkled in, as real notifications are.
enum CorpusText {
    struct Kind: Sendable {
        var name: String
        var weight: Int
        var path: String
        var title: String
    }

    static let kinds: [Kind] = [
        Kind(name: "task.assigned", weight: 14, path: "tasks", title: "{actor} assigned you to \"{subject}\""),
        Kind(name: "comment.mentioned", weight: 12, path: "comments", title: "{actor} mentioned you in {project}"),
        Kind(
            name: "comment.replied", weight: 9, path: "comments",
            title: "{actor} replied to your comment on \"{subject}\""),
        Kind(name: "review.requested", weight: 8, path: "reviews", title: "{actor} requested your review on #{number}"),
        Kind(name: "task.due_soon", weight: 6, path: "tasks", title: "\"{subject}\" is due tomorrow"),
        Kind(name: "task.completed", weight: 6, path: "tasks", title: "{actor} completed \"{subject}\""),
        Kind(name: "report.ready", weight: 6, path: "reports", title: "Your weekly report for {project} is ready"),
        Kind(name: "build.failed", weight: 5, path: "builds", title: "Build #{number} failed on {project}"),
        Kind(name: "review.approved", weight: 5, path: "reviews", title: "{actor} approved #{number}"),
        Kind(name: "meeting.scheduled", weight: 5, path: "meetings", title: "{actor} scheduled \"{subject}\" sync"),
        Kind(name: "file.shared", weight: 5, path: "files", title: "{actor} shared a file in {project}"),
        Kind(name: "build.succeeded", weight: 4, path: "builds", title: "Build #{number} passed on {project}"),
        Kind(name: "deploy.finished", weight: 4, path: "deploys", title: "Deploy #{number} of {project} finished"),
        Kind(
            name: "meeting.reminder", weight: 4, path: "meetings", title: "Reminder: \"{subject}\" starts in 15 minutes"
        ),
        Kind(name: "project.invited", weight: 3, path: "members", title: "{actor} invited you to {project}"),
        Kind(name: "export.ready", weight: 3, path: "exports", title: "Your export of {project} is ready to download"),
        Kind(name: "follower.new", weight: 3, path: "people", title: "{actor} started following your work"),
        Kind(name: "invoice.paid", weight: 2, path: "invoices", title: "Invoice #{number} was paid"),
        Kind(name: "invoice.overdue", weight: 2, path: "invoices", title: "Invoice #{number} is overdue"),
        Kind(
            name: "security.alert", weight: 2, path: "security", title: "New sign-in to your account from a new device"),
    ]

    static let kindWeightTotal = kinds.reduce(0) { $0 + $1.weight }

    static let firstNames = [
        "Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Jasmine", "Kofi", "Lena",
        "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Ximena",
        "Yusuf", "Zoe", "Aiko", "Björn", "Carmen", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    ]

    static let lastNames = [
        "Anderson", "Becker", "Castillo", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito", "Jansen",
        "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi", "Schmidt", "Tanaka",
        "Ueda", "Varga", "Wagner", "Xu", "Yilmaz", "Zhang", "Novak", "Silva", "Khan", "Murphy",
    ]

    static let projectNames = [
        "Atlas", "Beacon", "Cascade", "Delta Platform", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
        "Keystone", "Lighthouse", "Meridian", "Nimbus", "Orchid", "Pinnacle", "Quartz", "Redwood", "Summit",
        "Tidewater", "Umbra", "Vanguard", "Willow", "Zephyr", "Mobile App", "Billing Service", "Data Pipeline",
        "Search", "Onboarding", "Design System",
    ]

    /// Subjects are "verb object" pairs: about a thousand distinct task names.
    static let subjects: [String] = subjectVerbs.flatMap { verb in subjectObjects.map { verb + " " + $0 } }

    static let subjectVerbs = [
        "Fix", "Review", "Update", "Migrate", "Refactor", "Document", "Test", "Design", "Plan", "Ship", "Audit",
        "Investigate", "Clean up", "Localize", "Benchmark", "Prototype", "Deprecate", "Monitor", "Draft", "Approve",
        "Schedule", "Archive", "Rename", "Split", "Merge", "Upgrade", "Secure", "Measure", "Simplify", "Automate",
    ]

    static let subjectObjects = [
        "login redirect loop", "billing API", "Q3 roadmap", "onboarding copy", "checkout test", "dark mode",
        "cold start time", "API keys", "quarterly plan", "interview notes", "search indexer", "accessibility report",
        "release checklist", "design review", "incident report", "pricing page", "feature flags", "database schema",
        "error messages", "crash on launch", "invoice export", "SSO settings", "cache invalidation", "offsite agenda",
        "mobile navigation", "email templates", "audit log", "permissions model", "data retention policy",
        "rate limiter", "webhook retries", "CSV import", "notification settings", "team dashboard", "sales deck",
        "hiring plan", "support macros", "load balancer", "backup job", "status page",
    ]

    /// Words for the free text people write in comments, most common first.
    static let commentWords = [
        "the", "we", "to", "this", "is", "it", "and", "a", "of", "for", "on", "can", "you", "that", "should", "be",
        "I", "think", "in", "with", "not", "but", "need", "will", "before", "after", "check", "looks", "good", "just",
        "one", "more", "question", "about", "numbers", "release", "tomorrow", "today", "Friday", "Monday", "again",
        "maybe", "already", "still", "fixed", "broken", "test", "tests", "failing", "passing", "deploy", "staging",
        "production", "customer", "customers", "feedback", "issue", "issues", "change", "changes", "merge", "branch",
        "review", "comments", "update", "updated", "data", "report", "chart", "numbers", "budget", "estimate",
        "timeline", "scope", "risk", "blocker", "done", "ready", "almost", "soon", "later", "next", "week", "sprint",
        "meeting", "call", "notes", "agree", "disagree", "idea", "proposal", "option", "better", "worse", "faster",
        "slower", "simpler", "cleaner", "bug", "crash", "error", "warning", "log", "logs", "metric", "alert", "page",
        "screen", "button", "form", "field", "label", "copy", "text", "image", "icon", "color", "spacing", "mobile",
        "desktop", "browser", "Safari", "Chrome", "Android", "iOS", "API", "endpoint", "query", "index", "cache",
        "latency", "memory", "CPU", "disk", "timeout", "retry", "config", "flag", "rollout", "rollback", "version",
        "please", "thanks", "sorry", "great", "nice", "hmm", "ok", "sure", "yes", "no", "why", "how", "what", "when",
        "where", "who", "could", "would", "might", "must", "also", "only", "even", "really", "quite", "very", "all",
        "some", "any", "every", "each", "few", "many", "most", "other", "same", "new", "old", "first", "last", "team",
        "design", "product", "support", "sales", "finance", "legal", "security", "infra", "platform", "growth",
    ]

    static let sentences = [
        "{actor} left a note for you.", "Please take a look when you have a moment.",
        "This affects the {project} project.", "The change is ready for your review.",
        "It was marked as high priority by {actor}.", "The deadline is at the end of the week.",
        "You can reply directly from the app.", "Open the link to see the full discussion.",
        "There are 3 new comments since your last visit.", "The previous version is still available.",
        "We noticed unusual activity and wanted to let you know.", "No action is needed if this was you.",
        "{actor} wrote: \"Can you check the numbers before Friday?\"",
        "{actor} wrote: \"Looks good to me, just one small question.\"",
        "The report covers the last seven days of activity.", "All checks passed except the integration suite.",
        "\"{subject}\" was moved to In Progress.", "\"{subject}\" has 2 open sub-tasks.",
        "Tap to open it in {project}.", "Your teammates are waiting on this item.",
        "{number} people viewed \"{subject}\" this week.", "The estimate changed to {number} minutes.",
        "{actor} added {project} as a dependency.", "Ticket {number} was linked to \"{subject}\".",
        "{actor} changed the due date of \"{subject}\".", "Your reply to {actor} was delivered.",
        "The file is {number} KB and expires in 7 days.", "{actor} and 2 others reacted to your comment.",
    ]
}

/// A text template pre-split into literal bytes and slots, so the corpus is rendered by copying
/// bytes; JSON escaping of the literals is done once, up front.
struct CorpusTemplate: Sendable {
    struct Slots {
        var actor: [UInt8]
        var subject: [UInt8]
        var project: [UInt8]
        var number: [UInt8]
    }

    private enum Part: Sendable {
        case literal([UInt8])
        case actor, subject, project, number
    }

    private let parts: [Part]

    init(_ text: String) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            literal += Self.escaped(rest[..<open])
            let close = rest[open...].firstIndex(of: "}")!
            let name = rest[rest.index(after: open)..<close]
            let slot: Part
            switch name {
            case "actor": slot = .actor
            case "subject": slot = .subject
            case "project": slot = .project
            case "number": slot = .number
            default: preconditionFailure("unknown template slot \(name)")
            }
            if !literal.isEmpty { parts.append(.literal(literal)) }
            literal = []
            parts.append(slot)
            rest = rest[rest.index(after: close)...]
        }
        literal += Self.escaped(rest)
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// Renders the template as JSON string content (without the quotes). Slot values are plain
    /// words that need no escaping.
    func render(_ slots: Slots, into out: inout [UInt8]) {
        for part in parts {
            switch part {
            case .literal(let bytes): out += bytes
            case .actor: out += slots.actor
            case .subject: out += slots.subject
            case .project: out += slots.project
            case .number: out += slots.number
            }
        }
    }

    private static func escaped(_ text: Substring) -> [UInt8] {
        var out: [UInt8] = []
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(byte)
        }
        return out
    }

    static let titles = CorpusText.kinds.map { CorpusTemplate($0.title) }
    static let sentences = CorpusText.sentences.map { CorpusTemplate($0) }
}
