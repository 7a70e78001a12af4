import Logging
import TidingsFanout
import TidingsStore

/// The hello's checks, in the protocol's order: the token (4401), the permission (4403), then
/// the shape and the cursor (4400), and last the subject's bound on open streams (1013). An
/// accepted hello holds one of its subject's streams until the connection releases it.
struct HelloCheck: Sendable {
    let verifier: TokenVerifier
    let sessions: SessionRegistry
    let streamsPerSubjectMax: Int

    /// `headerToken`: the upgrade's `Authorization` bearer token, if it had one.
    func check(
        _ text: String, headerToken: String?, logger: Logger
    ) -> Result<StreamDelivery.AcceptedHello, StreamFault> {
        do {
            return .success(try accept(Hello(text), headerToken: headerToken, logger: logger))
        } catch {
            return .failure(error)
        }
    }

    private func accept(
        _ hello: Hello, headerToken: String?, logger: Logger
    ) throws(StreamFault) -> StreamDelivery.AcceptedHello {
        let token: String
        switch (hello.token, headerToken) {
        case (let given?, let header?):
            guard given == header else { throw StreamFault.unauthorized }
            token = given
        case (let given?, nil): token = given
        case (nil, let header?): token = header
        case (nil, nil): throw StreamFault.unauthorized
        }
        let principal: Principal
        do {
            principal = try verifier.verify(token)
        } catch {
            logger.debug("token refused", metadata: ["reason": .string(error.reason)])
            throw StreamFault.unauthorized
        }
        if principal.role == .publisher { throw StreamFault.forbidden("publishers may not open streams") }
        let wantsAll = hello.stream == "all"
        if wantsAll {
            guard principal.role.mayAudit else {
                throw StreamFault.forbidden("only auditors and admins read the all stream")
            }
        } else if let user = hello.userID, user != principal.subject, !principal.role.mayAudit {
            throw StreamFault.forbidden("this token may not read another user's stream")
        }
        if let problem = hello.shapeProblem { throw StreamFault.badRequest(problem) }
        if wantsAll && hello.userID != nil { throw StreamFault.badRequest("the all stream takes no user_id") }
        let key: StreamKey = wantsAll ? .all : .user(hello.userID ?? principal.subject)
        if case .user(let id) = key, !Identifier.isValid(id) {
            throw StreamFault.badRequest("the token's subject is not a valid user id; name user_id")
        }
        guard sessions.claimStream(subject: principal.subject, limit: streamsPerSubjectMax) else {
            throw StreamFault.tooManyStreams(limit: streamsPerSubjectMax)
        }
        return StreamDelivery.AcceptedHello(principal: principal, key: key, cursor: hello.cursor)
    }
}
