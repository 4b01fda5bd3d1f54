// The fixtures of the batch task tests: seed 003's request and response examples and the
// profile workflows they start.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Profiles
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// The request and response examples of seed 003 (`import_and_start_batch_task`, `tasks/status`),
/// copied as the seed writes them. Tests replace only the placeholders: the token, the workflow
/// ids and the task id.
enum Seed003 {
    static let matchingEmail = #"""
        {
        "token": "abcdefghijklmnqrstuvwxyz",
        "workflow_id": 2,
        "matching": "email",
        "data": [
        {
        "data": {
        "_fname": "Herbert",
        "_lname": "Lambert",
        "email": "profile5@example.com",
        "phones": "+79000000000"
        }
        },
        {
        "data": {
        "_fname": "Bert",
        "_lname": "Lambert",
        "email": "profile8@example.com",
        "phones": "+79000000000"
        }
        }
        ]
        }
        """#

    static let matchingCustom = #"""
        {
        "token": "abcdefghijklmnqrstuvwxyz",
        "workflow_id": 233,
        "matching": "custom",
        "field_name": "New_field_1",
        "data": [
        {
        "data": {
        "_fname": "NUMBER15",
        "_lname": "Lambert",
        "email": "profile015@example.com",
        "phones": "+790000000015",
        "New_field_1": "00015"
        }
        },
        {
        "data": {
        "_fname": "NUMBER16",
        "_lname": "Lambert",
        "email": "profile016@example.com",
        "phones": "+790000000016",
        "New_field_1": "00016"
        }
        }
        ]
        }
        """#

    static let response = #"""
        {
        "error": 0,
        "error_text": "Successful operation",
        "task_id": "30421978-7f6d-4f39-913f-fb6cad8e2477"
        }
        """#

    static let tooLarge = #"""
        {
        "error": 400,
        "error_debug": "http: request body too large",
        "error_text": "Invalid request"
        }
        """#

    static let statusRequest = #"""
        {
        "token": "abcdefghijklmnqrstuvwxyz",
        "task_id": "task_b2f9fk6a-2479-4a63-b592-f15d4e3b69c5"

        }
        """#

    static let statusResponse = #"""
        {
        "data": {
        "status": "completed",
        "progress": 100,
        "result": {
        "error": 0,
        "error_text": "",
        "result": [
        {
        "profile_id": "61e947333f62fc26d384452c"
        },
        {
        "profile_id": "61e947333f62fc26d384452e"
        }
        ]
        }
        },
        "error": 0,
        "error_text": "Successful operation"
        }
        """#

    static let token = "abcdefghijklmnqrstuvwxyz"
}

/// An action workflow on profiles that tags each profile it runs for.
let profileTagDefinition = try! JSONValue(parsing: #"""
    {"trigger": {"kind": "action", "object_type": "profile"},
     "routes": [{"name": "all", "steps": [{"step_uid": "mark", "type": "tag", "parameters": {"tags": ["started"]}}]}]}
    """#)

/// An action workflow on profiles whose steps copy `apicontent.one` and `custom_data.field` onto
/// the profile.
let profileContentDefinition = try! JSONValue(parsing: #"""
    {"trigger": {"kind": "action", "object_type": "profile"},
     "routes": [{"name": "all", "steps": [
        {"step_uid": "greet", "type": "set_field", "parameters": {"field": "greeting", "path": "apicontent.one"}},
        {"step_uid": "crm", "type": "set_field", "parameters": {"field": "crm_note", "path": "custom_data.field"}}]}]}
    """#)
