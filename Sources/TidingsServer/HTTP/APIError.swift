import Hummingbird
import NIOCore
import TidingsStore

/// An error as the protocol writes it: `{"error":{"code","message"}}` with `index` or `head`
/// where stated, and the status that goes with the code.
struct APIError: HTTPResponseError, Sendable {
    let code: String
    let message: String
    var index: Int? = nil
    var head: String? = nil

    var status: HTTPResponse.Status {
        switch code {
        case "bad_request", "invalid_cursor": .badRequest
        case "unauthorized": .unauthorized
        case "forbidden": .forbidden
        case "not_found": .notFound
        case "method_not_allowed": .methodNotAllowed
        case "conflict", "cursor_reset": .conflict
        case "payload_too_large": .contentTooLarge
        case "unsupported_media_type": .unsupportedMediaType
        case "unavailable": .serviceUnavailable
        default: .internalServerError
        }
    }

    static let unauthorized = APIError(code: "unauthorized", message: "missing or invalid bearer token")
    static let forbidden = APIError(code: "forbidden", message: "this token's role may not do this")

    static func badRequest(_ message: String) -> APIError { APIError(code: "bad_request", message: message) }

    init(code: String, message: String, index: Int? = nil, head: String? = nil) {
        self.code = code
        self.message = message
        self.index = index
        self.head = head
    }

    init(_ error: StoreError) {
        code = error.code.rawValue
        message = error.message
        index = error.index
        head = error.head
    }

    var body: [UInt8] {
        var out = Array(#"{"error":{"code":"#.utf8)
        JSONWriter.appendString(code, to: &out)
        out += Array(#","message":"#.utf8)
        JSONWriter.appendString(message, to: &out)
        if let index {
            out += Array(#","index":"#.utf8)
            out += Array(String(index).utf8)
        }
        if let head {
            out += Array(#","head":"#.utf8)
            JSONWriter.appendString(head, to: &out)
        }
        out += Array("}}".utf8)
        return out
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if code == "unauthorized" { headers[.wwwAuthenticate] = #"Bearer realm="tidings""# }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
