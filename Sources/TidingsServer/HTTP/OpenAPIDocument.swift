import HTTPTypes
import Hummingbird
import NIOCore

/// The OpenAPI description and the JSON Schemas, shipped in the binary's resources and served
/// at `/v1/openapi.yaml` and `/v1/<name>.json` (the description refers to the schemas by
/// relative paths, so both resolve from either place).
enum OpenAPIDocument {
    static let files = ResourceFolder.files("Schemas") { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") }

    static func response(_ name: String) throws -> Response {
        guard let contents = files[name] else {
            if files.isEmpty { throw APIError(code: "internal", message: "the schemas are missing from this build") }
            throw APIError(code: "not_found", message: "no document /v1/\(name)")
        }
        var headers = HTTPFields()
        headers[.contentType] = name.hasSuffix(".yaml") ? "application/yaml" : "application/schema+json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: contents)))
    }
}
