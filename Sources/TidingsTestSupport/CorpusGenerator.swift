/// The deterministic benchmark corpus: notification events shaped like a busy product's.
///
/// 80% `notification.created`, 20% `notification.read` of an earlier unread notification of the
/// same user (recency-biased). Users are drawn from a bounded Zipf distribution (s = 1.0) over
/// `userCount` ids, so a few users hold most events, as in real inboxes. Created events carry a
/// UUID notification id, one of about twenty weighted kinds, a templated title, a 60-200
/// character body, a link with ids, an actor and a project. The same seed gives the same bytes
/// on every machine, so every workload and every peer sees the same input.
public struct CorpusGenerator: Sendable {
    public struct Event: Sendable {
        public var type: String
        public var userID: String
        /// Compact JSON of the event's `data` object.
        public var data: [UInt8]
        /// Compact JSON of the whole event as a client sends it: `{"type","user_id","data"}`.
        public var json: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(data.count + 64)
            out.append(contentsOf: Array(#"{"type":""#.utf8))
            out.append(contentsOf: Array(type.utf8))
            out.append(contentsOf: Array(#"","user_id":""#.utf8))
            out.append(contentsOf: Array(userID.utf8))
            out.append(contentsOf: Array(#"","data":"#.utf8))
            out.append(contentsOf: data)
            out.append(UInt8(ascii: "}"))
            return out
        }
    }

    public static let defaultSeed: UInt64 = 20_261_126
    public static let defaultUserCount = 100_000
    /// How many of a user's newest unread notifications a read may pick from.
    private static let unreadWindowMax = 64

    private var random: SeededGenerator
    private let userIDs: [String]
    private let zipfCumulative: [Double]
    private var unreadByUser: [Int: [String]] = [:]
    private let projects: [String]
    private let commentWords: [[UInt8]]
    private let commentWordCumulative: [Double]

    public init(seed: UInt64 = defaultSeed, userCount: Int = defaultUserCount) {
        precondition(userCount > 0, "a corpus needs at least one user")
        random = SeededGenerator(seed: seed)
        var idRandom = SeededGenerator(seed: seed ^ 0x5553_4552)
        userIDs = (0..<userCount).map { _ in "usr_" + Self.hex(idRandom.next(), digits: 12) }
        projects = (0..<20_000).map { _ in "prj_" + Self.hex(idRandom.next(), digits: 10) }
        zipfCumulative = Self.zipfCumulative(count: userCount)
        commentWords = CorpusText.commentWords.map { Array($0.utf8) }
        commentWordCumulative = Self.zipfCumulative(count: commentWords.count)
    }

    private static func zipfCumulative(count: Int) -> [Double] {
        var cumulative: [Double] = []
        cumulative.reserveCapacity(count)
        var sum = 0.0
        for rank in 1...count {
            sum += 1.0 / Double(rank)
            cumulative.append(sum)
        }
        return cumulative.map { $0 / sum }
    }

    /// The next event of the corpus.
    public mutating func next() -> Event {
        let user = drawUser()
        if random.nextUnitDouble() < 0.2, let read = nextRead(preferring: user) {
            return read
        }
        return nextCreated(user: user)
    }

    /// The user ids of the corpus, most active first.
    public var users: [String] { userIDs }

    private mutating func drawUser() -> Int {
        drawZipf(zipfCumulative)
    }

    private mutating func drawZipf(_ cumulative: [Double]) -> Int {
        let target = random.nextUnitDouble()
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private mutating func nextRead(preferring user: Int) -> Event? {
        // A read belongs to a user with something unread; try a few Zipf draws before giving up.
        var candidate = user
        for _ in 0..<8 {
            if let unread = unreadByUser[candidate], !unread.isEmpty {
                // Recency bias: geometric over the newest unread notifications.
                var back = 0
                while back + 1 < min(unread.count, Self.unreadWindowMax) && random.nextUnitDouble() < 0.45 {
                    back += 1
                }
                let index = unread.count - 1 - back
                let notificationID = unread[index]
                unreadByUser[candidate]!.remove(at: index)
                let data = Array(#"{"notification_id":""#.utf8) + Array(notificationID.utf8) + Array(#""}"#.utf8)
                return Event(type: "notification.read", userID: userIDs[candidate], data: data)
            }
            candidate = drawUser()
        }
        return nil
    }

    private mutating func nextCreated(user: Int) -> Event {
        let notificationID = uuid()
        unreadByUser[user, default: []].append(notificationID)
        let kindIndex = pickKind()
        let kind = CorpusText.kinds[kindIndex]
        let actor = userIDs[drawUser()]
        let slots = CorpusTemplate.Slots(
            actor: Array((pick(CorpusText.firstNames) + " " + pick(CorpusText.lastNames)).utf8),
            subject: Array(pick(CorpusText.subjects).utf8),
            project: Array(pick(CorpusText.projectNames).utf8),
            number: Array(String(100 + Int(random.next() % 90_000)).utf8)
        )
        let project = projects[Int(random.next() % UInt64(projects.count))]
        var data: [UInt8] = []
        data.reserveCapacity(600)
        data += Array(#"{"notification_id":""#.utf8) + Array(notificationID.utf8)
        data += Array(#"","kind":""#.utf8) + Array(kind.name.utf8)
        data += Array(#"","title":""#.utf8)
        CorpusTemplate.titles[kindIndex].render(slots, into: &data)
        data += Array(#"","body":""#.utf8)
        appendBody(slots, into: &data)
        data += Array(#"","link":"https://app.example.com/projects/"#.utf8) + Array(project.utf8)
        data += [UInt8(ascii: "/")] + Array(kind.path.utf8) + [UInt8(ascii: "/")] + slots.number
        data += Array(#"","actor_id":""#.utf8) + Array(actor.utf8)
        data += Array(#"","metadata":{"project_id":""#.utf8) + Array(project.utf8) + [UInt8(ascii: "\"")]
        if random.nextUnitDouble() < 0.3 {
            data += Array(#","priority":""#.utf8) + Array(pick(["high", "normal", "low"]).utf8) + [UInt8(ascii: "\"")]
        }
        data += Array("}}".utf8)
        return Event(type: "notification.created", userID: userIDs[user], data: data)
    }

    /// Appends a body of whole sentences, 60-200 bytes of JSON string content, cut at a word.
    private mutating func appendBody(_ slots: CorpusTemplate.Slots, into data: inout [UInt8]) {
        let target = 60 + Int(random.next() % 141)
        var body: [UInt8] = []
        if random.nextUnitDouble() < 0.75 {
            // What people write: a quoted comment of common words.
            body += slots.actor + Array(#" wrote: \""#.utf8)
            let words = 5 + Int(random.next() % 18)
            for index in 0..<words {
                if index > 0 { body.append(UInt8(ascii: " ")) }
                body += commentWords[drawZipf(commentWordCumulative)]
            }
            body += Array(#".\""#.utf8)
        }
        while body.count < target {
            if !body.isEmpty { body.append(UInt8(ascii: " ")) }
            CorpusTemplate.sentences[Int(random.next() % UInt64(CorpusTemplate.sentences.count))]
                .render(slots, into: &body)
        }
        if body.count > target {
            var cut = target
            while cut > 0 && body[cut] != UInt8(ascii: " ") { cut -= 1 }
            // Never end inside an escape sequence or after a space.
            while cut > 0 && (body[cut - 1] == UInt8(ascii: " ") || body[cut - 1] == UInt8(ascii: "\\")) { cut -= 1 }
            body.removeSubrange(cut...)
            body.append(UInt8(ascii: "."))
        }
        data += body
    }

    private mutating func pickKind() -> Int {
        var ticket = Int(random.next() % UInt64(CorpusText.kindWeightTotal))
        for (index, kind) in CorpusText.kinds.enumerated() {
            if ticket < kind.weight { return index }
            ticket -= kind.weight
        }
        return 0
    }

    private mutating func pick<T>(_ values: [T]) -> T {
        values[Int(random.next() % UInt64(values.count))]
    }

    private mutating func uuid() -> String {
        var high = random.next()
        var low = random.next()
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(0xC000_0000_0000_0000)) | 0x8000_0000_0000_0000  // RFC 4122 variant
        let hexHigh = Self.hex(high, digits: 16)
        let hexLow = Self.hex(low, digits: 16)
        let h = Array(hexHigh)
        let l = Array(hexLow)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-"
            + String(l[0..<4]) + "-" + String(l[4..<16])
    }

    static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        let padded = String(repeating: "0", count: max(0, 16 - text.count)) + text
        return String(padded.suffix(digits))
    }
}
