import RunlogJSON
import Access
import HTTPTypes
import WorkflowModel
import Workflows

extension Answer {
    /// What a retry of `POST /v1/keys` with the same `Idempotency-Key` gets, kept instead of
    /// `created` (201 with the key's text): only hashes of keys are ever stored, so the text
    /// cannot be shown again. 409 `api_key_already_created`, naming the key that was made (its
    /// id, role and name, in `created_key`, and `Location`), so a client that lost the first
    /// answer can revoke that key and make another.
    static func keyAlreadyCreated(_ created: Answer) -> Answer {
        var key = (try? JSONValue(parsing: Array(created.body.utf8)))?.objectValue ?? [:]
        key["key"] = nil
        let id = key["id"]?.stringValue ?? ""
        let message = "this request already created API key \(id); a key's text is shown only once, in the answer "
            + "to the request that created it, and is not kept, so a retry cannot show it again. If that answer "
            + "was lost, revoke \(id) (DELETE /v1/keys/\(id)) and create another key"
        let body: JSONValue = [
            "error": ["code": "api_key_already_created", "message": .string(message)],
            "created_key": .object(key),
        ]
        var headers: HTTPFields = [:]
        headers[.location] = created.headers[.location]
        return Answer(body, status: .conflict, headers: headers)
    }
}
