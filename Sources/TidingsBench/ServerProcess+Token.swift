import Foundation
import TidingsServer
import TidingsTestSupport

extension ServerProcess {
    /// A token for the server's secret, valid for a day.
    func token(role: Role, subject: String) -> String {
        TokenSigner(secret: Array(Self.secret.utf8)).token(
            subject: subject, role: role, expiresAt: Int64(Date().timeIntervalSince1970) + 86_400)
    }
}
