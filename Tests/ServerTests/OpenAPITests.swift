import Foundation
import Hummingbird
import RunlogTestSupport
import Testing
@testable import RunlogHTTP

@Suite("OpenAPI document")
struct OpenAPITests {
    static let specPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml").path

    /// `METHOD /path` for every operation under `paths:` (paths at two spaces, methods at four).
    static func documentedRoutes() throws -> Set<String> {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        var routes = Set<String>()
        var inPaths = false
        var path: String?
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"),
                      let path, methods.contains(String(line.dropFirst(4).dropLast())) {
                routes.insert("\(line.dropFirst(4).dropLast().uppercased()) \(path)")
            }
        }
        return routes
    }

    @Test("every route the server answers is in docs/openapi.yaml, and every documented route is served")
    func routesMatch() async throws {
        try await TestServer.with { server in
            // The dashboard's pages (`/` sends a browser to them) are HTML, not the API: docs/dashboard.md.
            let served = Set(server.api.makeRouter().routes.map { "\($0.method) \($0.path)" }
                .filter { !$0.hasSuffix(" /") && !$0.hasSuffix(" /ui") && !$0.contains(" /ui/") })
            let documented = try Self.documentedRoutes()
            #expect(documented.count > 20)
            #expect(served.subtracting(documented).sorted() == [], "served but not documented")
            #expect(documented.subtracting(served).sorted() == [], "documented but not served")
        }
    }

    @Test("docs/openapi.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator)")
    func validDocument() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sys; from openapi_spec_validator import validate; "
            + "from openapi_spec_validator.readers import read_from_filename; "
            + "spec, _ = read_from_filename(sys.argv[1]); validate(spec); print('valid')", Self.specPath]
        let output = try Spawning.locked {
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            return output
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("valid"))
    }
}
