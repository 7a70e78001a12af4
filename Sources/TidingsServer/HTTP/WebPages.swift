import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The browser pages: the inbox demo at `/`, the admin and audit console at `/console`, and
/// their scripts and styles under `/web/`. The files ship in the binary's resources
/// (`Resources/web`), are read once at start and served from memory, so the pages need nothing
/// beyond the binary: no build step, no CDN.
///
/// Every page answer carries a content security policy that allows only this origin's scripts,
/// styles and connections (the pages hold bearer tokens, so no inline script and no third party
/// may run beside them), and an ETag so a reload costs a 304.
enum WebPages {
    struct File: Sendable {
        let bytes: [UInt8]
        let contentType: String
        let etag: String
    }

    /// Page paths and the file each serves.
    static let pages: [String: String] = ["/": "index.html", "/console": "console.html"]

    static let files: [String: File] = {
        var files: [String: File] = [:]
        for (name, bytes) in ResourceFolder.files("web", keep: { contentType(of: $0) != nil }) {
            guard let type = contentType(of: name) else { continue }
            let digest = SHA256.hash(data: bytes).prefix(12).map { String(format: "%02x", $0) }.joined()
            files[name] = File(bytes: bytes, contentType: type, etag: "\"\(digest)\"")
        }
        return files
    }()

    static func contentType(of name: String) -> String? {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: nil
        }
    }

    static let securityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func register(on routes: RouteRegistrar) {
        for (path, name) in pages {
            routes.on(.get, path) { request, _ in try response(name, request) }
        }
        routes.on(.get, "/web/:file") { request, context in
            try response(context.parameters.get("file") ?? "", request)
        }
    }

    static func response(_ name: String, _ request: Request) throws -> Response {
        guard let file = files[name] else {
            if files.isEmpty { throw APIError(code: "internal", message: "the web pages are missing from this build") }
            throw APIError(code: "not_found", message: "no file /web/\(name)")
        }
        var headers = HTTPFields()
        headers[.contentType] = file.contentType
        headers[.eTag] = file.etag
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = securityPolicy
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
