import Foundation
import Testing

/// The layers, as imports. SwiftPM lets a file import any module already built, declared as a
/// dependency of its target or not, so Package.swift alone does not hold the line: this reads
/// every source file's imports and checks them against what each module may see.
@Suite("Layering")
struct LayeringTests {
    /// The project's modules each module may import (system and package dependencies are not
    /// listed: only Runlog's own modules are checked).
    static let allowed: [String: Set<String>] = [
        "RunlogJSON": [],
        "EventLog": ["RunlogJSON"],
        "LMDBStore": ["RunlogJSON", "EventLog", "CLMDB"],
        "PostgresStore": ["EventLog", "LMDBStore"],
        "WorkflowModel": ["RunlogJSON"],
        "Workflows": ["RunlogJSON", "EventLog", "WorkflowModel"],
        "Access": ["RunlogJSON", "EventLog", "WorkflowModel", "Workflows"],
        "Profiles": ["RunlogJSON", "EventLog", "WorkflowModel", "Workflows"],
        "S3": [],
        "Importers": ["RunlogJSON", "EventLog", "WorkflowModel", "Workflows", "S3"],
        "RunlogHTTP": ["RunlogJSON", "EventLog", "WorkflowModel", "Workflows", "Access", "Importers", "Profiles"],
        // The composition root: the one place that picks the storage backend.
        "runlog": ["RunlogJSON", "EventLog", "LMDBStore", "PostgresStore", "WorkflowModel", "Workflows", "Access", "Importers",
                   "Profiles", "RunlogHTTP", "S3"],
    ]

    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
    }

    /// Runlog's modules a module's files import, with the files that import each.
    static func imports(of module: String) throws -> [String: [String]] {
        let projectModules = Set(allowed.keys).union(["CLMDB"])
        let root = sources.appendingPathComponent(module)
        var found: [String: [String]] = [:]
        let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        for file in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                      words[..<index].allSatisfy({ ["public", "package", "internal", "@testable"].contains($0) })
                else { continue }
                let name = String(words[index + 1])
                if projectModules.contains(name) { found[name, default: []].append(file) }
            }
        }
        return found
    }

    @Test("each module imports only the modules below it: no LMDB above the store, a pure workflow model")
    func importsFollowTheLayers() throws {
        let modules = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { $0 != "CLMDB" }
        #expect(Set(modules) == Set(Self.allowed.keys), "a module without a rule (or a rule without a module)")
        for module in modules {
            for (imported, files) in try Self.imports(of: module) where !(Self.allowed[module] ?? []).contains(imported) {
                Issue.record("\(module) imports \(imported) in \(files.sorted().joined(separator: ", "))")
            }
        }
    }

    @Test("the rule is read from real imports: Workflows imports EventLog, runlog imports LMDBStore")
    func theScanSeesImports() throws {
        #expect(try Self.imports(of: "Workflows")["EventLog"]?.isEmpty == false)
        #expect(try Self.imports(of: "runlog")["LMDBStore"]?.isEmpty == false)
        #expect(try Self.imports(of: "WorkflowModel")["EventLog"] == nil)
    }
}
