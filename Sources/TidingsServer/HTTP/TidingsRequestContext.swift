import Hummingbird
import Logging

/// The context of one HTTP request: Hummingbird's core storage plus the request id every log
/// line of the request carries.
struct TidingsRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let requestID: String

    init(source: Source) {
        coreContext = .init(source: source)
        requestID = RequestID.make()
        logger[metadataKey: "request_id"] = .string(requestID)
    }
}

enum RequestID {
    /// 16 hex digits, random: enough to find one request's lines in the logs.
    static func make() -> String {
        let value = UInt64.random(in: 0...UInt64.max)
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
