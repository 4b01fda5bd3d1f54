import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import Testing
@testable import Importers
import WorkflowModel
import Workflows

/// The query box's condition sees mapped columns converted by their parameters' types, other
/// columns and `columns.<name>` as text; names it cannot see are refused when the importer is saved.
@Suite("Importers: the query box on converted values")
struct QueryTypesTests {
    /// `ip` (string, required), `score` (integer), `signup` (date), `vip` (boolean).
    static let typedWorkflow = #"""
        {"trigger": {"kind": "api", "schema": {"fields": [
            {"name": "ip", "type": "string", "required": true},
            {"name": "score", "type": "integer"},
            {"name": "signup", "type": "date"},
            {"name": "vip", "type": "boolean"}]}},
         "routes": [{"name": "all", "steps": [{"step_uid": "l", "type": "add_to_list", "parameters": {"list": "ips", "path": "parameters.ip"}}]}]}
        """#

    static let csv = """
        ip,score,signup,vip,country
        10.0.0.1,6,2025-12-31,false,DE
        10.0.0.2,50,2026-01-01,true,US
        10.0.0.3,60,2026-02-15,false,FR
        10.0.0.4,100,2026-03-01,true,DE

        """

    static let mapping = ImporterMapping(columns: ["ip": "ip", "score": "score", "signup": "signup", "vip": "vip"])

    /// Saves an importer with `condition`, runs it dry and for real; both must agree. Returns the
    /// real run and the ips of its runs.
    static func importing(_ condition: JSONValue, csv: String = QueryTypesTests.csv,
                          mapping: ImporterMapping = QueryTypesTests.mapping)
        async throws -> (run: ImportRunRecord, ips: [String]) {
        return try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(typedWorkflow)
            let source = try await f.upload(csv)
            let importer = try await f.service.saveImporter(id: nil, name: "q", dataSourceId: source.id, workflowId: wf,
                                                            mapping: mapping,
                                                            query: try ImporterQuery(json: ["condition": condition]),
                                                            actor: "test")
            let dry = try await f.run(importer.id, dryRun: true)
            let run = try await f.run(importer.id)
            #expect(dry.status == .completed && run.status == .completed, "\(dry.reason ?? "") \(run.reason ?? "")")
            #expect(dry.runsCreated == run.runsCreated)
            #expect(dry.rowsSkipped == run.rowsSkipped)
            #expect(dry.rowsErrored == run.rowsErrored)
            let ips = try f.engine.detailed(try await f.service.createdRuns(run.id))
                .compactMap { $0.created.parameters["ip"]?.stringValue }
            return (run, ips)
        }
    }

    @Test("$gte 50 on an integer column keeps 50, 60 and 100 and drops 6 (it kept nothing when cells were text)")
    func integerGreaterOrEqual() async throws {
        let (run, ips) = try await Self.importing(["score": ["$gte": 50]])
        #expect(ips == ["10.0.0.2", "10.0.0.3", "10.0.0.4"])
        #expect(run.rowsSkipped == 1)
        #expect(run.rowsErrored == 0)
    }

    @Test("numbers order as numbers, not as text (\"100\" < \"7\" < \"9\" as text)")
    func numericOrder() async throws {
        #expect(try await Self.importing(["score": ["$lt": 7]]).ips == ["10.0.0.1"])
        #expect(try await Self.importing(["score": ["$gt": 9, "$lte": 60]]).ips == ["10.0.0.2", "10.0.0.3"])
        #expect(try await Self.importing(["score": ["$in": [6, 100]]]).ips == ["10.0.0.1", "10.0.0.4"])
    }

    @Test("a date column compares in date order; a boolean column is a boolean")
    func datesAndBooleans() async throws {
        #expect(try await Self.importing(["signup": ["$gte": "2026-01-01", "$lt": "2026-03-01"]]).ips
                == ["10.0.0.2", "10.0.0.3"])
        #expect(try await Self.importing(["vip": true]).ips == ["10.0.0.2", "10.0.0.4"])
    }

    @Test("text still works: an unmapped column, and columns.<name> for a mapped cell's text")
    func textComparisons() async throws {
        #expect(try await Self.importing(["country": ["$in": ["DE", "FR"]]]).ips == ["10.0.0.1", "10.0.0.3", "10.0.0.4"])
        #expect(try await Self.importing(["columns.score": ["$regex": "^[15]"]]).ips == ["10.0.0.2", "10.0.0.4"])
        #expect(try await Self.importing(["$or": [["country": "US"], ["score": ["$gt": 99]]]]).ips
                == ["10.0.0.2", "10.0.0.4"])
    }

    @Test("a cell the condition names that does not convert makes an errored row; rows dropped on other columns stay skipped")
    func failedConversion() async throws {
        let csv = """
            ip,score,signup,vip,country
            10.0.0.1,lots,2026-01-01,true,DE
            10.0.0.2,70,2026-02-30,true,US
            10.0.0.3,80,2026-01-05,true,DE

            """
        let named = try await Self.importing(["score": ["$gte": 50]], csv: csv)
        // Row 1: the score it names is not a number. Row 2: kept (70), then its date does not convert.
        #expect(named.ips == ["10.0.0.3"])
        #expect(named.run.rowsErrored == 2)
        #expect(named.run.rowsSkipped == 0)
        #expect(named.run.errors.map(\.field) == ["score", "signup"])
        #expect(named.run.errors.first?.error == "score must be an integer such as 123")
        // Dropped by a condition on a column that converted: skipped, although its date is bad.
        let other = try await Self.importing(["country": "DE"], csv: csv)
        #expect(other.ips == ["10.0.0.3"])
        #expect(other.run.rowsSkipped == 1)
        #expect(other.run.rowsErrored == 1)
        #expect(other.run.errors.first?.field == "score")
    }

    @Test("a condition naming what the data lacks, or comparing a number column with text, is refused at save")
    func refusedAtSave() async throws {
        try await ImportFixture.with { f in
            let wf = try await f.activeWorkflow(Self.typedWorkflow)
            let source = try await f.upload(Self.csv)
            for (condition, field, rule) in [
                (["scor": ["$gte": 50]] as JSONValue, "query.condition.scor", "names scor, which is not a column"),
                (["columns.nope": "x"], "query.condition.columns.nope", "names columns.nope, which is not a column"),
                (["score": ["$gte": "50"]], "query.condition.score", "compares text with score"),
                (["$and": [["score": ["$regex": "^5"]]]], "query.condition.score", "name columns.score for the cell's text"),
                (["parameters.score": 50], "query.condition.parameters.score", "names parameters"),
            ] {
                do throws(WorkflowError) {
                    _ = try await f.service.saveImporter(id: nil, name: "q", dataSourceId: source.id, workflowId: wf,
                                                         mapping: Self.mapping,
                                                         query: try ImporterQuery(json: ["condition": condition]), actor: "test")
                    Issue.record("\(condition.jsonText) was accepted")
                } catch {
                    #expect(error.code == .invalid)
                    #expect(error.issues.first?.field == field, "\(error)")
                    #expect(error.issues.first?.rule.contains(rule) == true, "\(error)")
                }
            }
            #expect(await f.service.snapshot.importers.isEmpty)
        }
    }

    @Test("an S3 source's header is known only when a run reads it: the run checks the condition the same way, and fails naming it")
    func checkedWhenRunReadsS3() async throws {
        try await ImportFixture.with(s3: { _, _ in OneObject(text: "ip,score\n10.0.0.1,6\n10.0.0.2,50\n") }) { f in
            let wf = try await f.activeWorkflow(apiWorkflow)
            let source = try await f.service.createS3DataSource(
                name: "s", settings: S3Settings(bucket: "b", key: "k.csv", prefix: nil, region: "us-east-1", endpoint: nil),
                secret: S3Secret(accessKeyId: "AKID", secretAccessKey: "s"), actor: "test")
            func importer(_ condition: JSONValue) async throws -> String {
                try await f.service.saveImporter(id: nil, name: "s", dataSourceId: source.id, workflowId: wf,
                                                 mapping: ImporterMapping(columns: ["ip": "ip", "score": "score"]),
                                                 query: try ImporterQuery(json: ["condition": condition]), actor: "test").id
            }
            let bad = try await f.run(try await importer(["score": ["$gte": "50"]]), dryRun: true)
            #expect(bad.status == .failed)
            #expect(bad.reason?.contains("query.condition.score compares text with score") == true, "\(bad.reason ?? "")")
            let missing = try await f.run(try await importer(["scor": 1]))
            #expect(missing.status == .failed)
            #expect(missing.reason?.contains("names scor, which is not a column") == true, "\(missing.reason ?? "")")
            let good = try await f.run(try await importer(["score": ["$gte": 50]]))
            #expect(good.status == .completed)
            #expect(good.runsCreated == 1)
            #expect(good.rowsSkipped == 1)
        }
    }
}
