import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// A store that cannot serve answers by why: a full data file, a read-only store and a stopping
/// server are told apart, through the engine's errors as well as the store's.
@Suite("HTTP API: storage errors keep their cause")
struct StorageErrorTests {
    @Test("the store's code decides status and code, whether it comes directly or through the engine")
    func mapping() {
        let cases: [(EventStoreError.Code, Int, String)] = [
            (.mapFull, 507, "storage_full"), (.readOnly, 503, "read_only"), (.closed, 503, "shutting_down"),
            (.corrupted, 500, "storage_corrupted"), (.storage, 503, "storage"), (.writerLocked, 503, "storage"),
        ]
        for (cause, status, code) in cases {
            let stored = EventStoreError(cause, "the store says so")
            let direct = APIError(stored)
            #expect(direct.status.code == status, "\(cause)")
            #expect(direct.code == code, "\(cause)")
            let viaEngine = APIError(WorkflowError(appending: stored))
            #expect(viaEngine.status.code == status, "\(cause)")
            #expect(viaEngine.code == code, "\(cause)")
            #expect(viaEngine.message.contains("the store says so"))
            let read = APIError(WorkflowError(storage: stored, "cannot read the run tables"))
            #expect(read.code == code && read.message.hasPrefix("cannot read the run tables: "), "\(read.message)")
        }
        // Errors of the domain are not storage errors, whatever their message.
        #expect(APIError(WorkflowError(.conflict, "store closed")).status == .conflict)
    }

    @Test("a command after the store closed answers 503 shutting_down, not a bare storage error")
    func closedStore() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                server.store.close()
                let answer = try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "late"])
                #expect(answer.status == .serviceUnavailable)
                #expect(answer.json["error"]?["code"] == "shutting_down", "\(answer.json)")
            }
        }
    }
}
