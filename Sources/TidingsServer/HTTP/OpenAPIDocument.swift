import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /v1/openapi.yaml`: the OpenAPI description shipped in the binary's resources.
enum OpenAPIDocument {
    static let contents: [UInt8]? = {
        guard
            let url = Bundle.module.url(
                forResource: "openapi", withExtension: "yaml", subdirectory: "Resources/Schemas")
        else { return nil }
        return (try? Data(contentsOf: url)).map(Array.init)
    }()

    static func response() throws -> Response {
        guard let contents else {
            throw APIError(code: "internal", message: "the OpenAPI document is missing from this build")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/yaml"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: contents)))
    }
}
