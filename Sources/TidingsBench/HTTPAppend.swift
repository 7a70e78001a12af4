import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import TidingsTestSupport

extension HTTPClient {
    /// Appends a batch through `POST /v1/events` on the loopback server at `port`; `events` are
    /// the events' JSON objects. Anything but `201 Created` is an error.
    func appendBatch(_ events: some Sequence<String>, port: Int, token: String) async throws {
        var body = Array(#"{"events":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += Array(event.utf8)
        }
        body += Array("]}".utf8)
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/events")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await execute(request, timeout: .seconds(60))
        _ = try await response.body.collect(upTo: 1 << 24)
        guard response.status == .created else { throw HarnessError("append failed: \(response.status)") }
    }
}
