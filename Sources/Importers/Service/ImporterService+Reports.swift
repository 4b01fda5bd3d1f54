public import WorkflowModel
import Workflows

extension ImporterService {
    /// The errored rows of an importer run as CSV (`ImportersState.erroredRowsCSV`).
    public func erroredRowsCSV(_ runId: String) throws(WorkflowError) -> String {
        _ = try requireRun(runId)
        return state.erroredRowsCSV(runId) ?? ""
    }

    /// The workflow runs an importer run created, with their rows, in row order.
    public func createdRuns(_ runId: String) async throws(WorkflowError) -> [RunRecord] {
        try await createdRuns(runId, limit: .max)
    }

    /// The first `limit` runs an importer run created (in the order they were created), by row:
    /// a page reads only those, not every run of a large import.
    public func createdRuns(_ runId: String, limit: Int) async throws(WorkflowError) -> [RunRecord] {
        let run = try requireRun(runId)
        return try engine.runs.runs(source: "importer", reference: run.id, limit: limit)
            .sorted { ($0.created.source.row ?? 0) < ($1.created.source.row ?? 0) }
    }

    /// A summary of an importer run as CSV: one line per recorded row (created with its run id
    /// and the run's status, or errored with the error), then totals as comment-free lines.
    public func summaryCSV(_ runId: String) async throws(WorkflowError) -> String {
        let run = try requireRun(runId)
        var lines: [(Int, [String])] = []
        for created in try await createdRuns(runId) {
            let row = created.created.source.row ?? 0
            lines.append((row, [String(row), "created", created.id, created.status.rawValue, ""]))
        }
        for error in run.errors {
            lines.append((error.row, [String(error.row), "errored", "", "", error.error]))
        }
        var out = CSVWriter.line(["row", "outcome", "run_id", "run_status", "error"])
        for (_, cells) in lines.sorted(by: { $0.0 < $1.0 }) { out += CSVWriter.line(cells) }
        return out
    }
}

extension ImportersState {
    /// The errored rows of an importer run as CSV: the original columns, then `row`, `field`,
    /// `value` and `error`. Fix the cells and import the file again (the extra columns are not
    /// mapped, so they are ignored). Nil when there is no such run.
    public func erroredRowsCSV(_ runId: String) -> String? {
        guard let run = runs[runId] else { return nil }
        var header = run.header
        if header.isEmpty, let importer = importers[run.importerId] {
            header = dataSources[importer.dataSourceId]?.header ?? []
        }
        var out = CSVWriter.line(header + ["row", "field", "value", "error"])
        for error in run.errors.sorted(by: { $0.row < $1.row }) {
            var cells = error.cells
            if cells.count < header.count { cells += Array(repeating: "", count: header.count - cells.count) }
            out += CSVWriter.line(Array(cells.prefix(header.count))
                                  + [String(error.row), error.field, error.value, error.error])
        }
        return out
    }
}

/// CSV output: fields quoted when they hold a comma, quote or line break; CRLF line ends.
enum CSVWriter {
    static func line(_ fields: [String]) -> String {
        fields.map(escape).joined(separator: ",") + "\r\n"
    }

    static func escape(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
