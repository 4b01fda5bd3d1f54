import Foundation
import Testing

/// docs/cli.md against the commands' own `--help`: every command the tool has is documented
/// with its options and an example, and the document names no command the tool lacks.
@Suite("docs/cli.md agrees with runlog --help")
struct CLIDocsTests {
    /// One command's help, parsed: its subcommands and the long options it shows.
    struct Help {
        var subcommands: [String] = []
        var options: [String] = []
    }

    static func help(_ path: [String]) async throws -> Help {
        let result = try await ChildProcess.run(path + ["--help"])
        #expect(result.status == 0, "runlog \(path.joined(separator: " ")) --help: \(result.stderr)")
        // `runlog help …` says the same.
        let viaHelp = try await ChildProcess.run(["help"] + path)
        #expect(viaHelp.stdout == result.stdout, "runlog help \(path.joined(separator: " ")) differs from --help")
        var help = Help()
        var section = ""
        for line in result.stdout {
            if let first = line.first, first != " ", line.hasSuffix(":") || line.contains(": ") {
                section = String(line.prefix { $0 != ":" })
                continue
            }
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let entry = line.dropFirst(2)
            switch section {
            case "SUBCOMMANDS":
                let name = entry.prefix { $0.isLetter || $0.isNumber || $0 == "-" }
                if let first = name.first, first.isLowercase, name != "help" { help.subcommands.append(String(name)) }
            case "OPTIONS":
                guard entry.hasPrefix("-") else { continue }
                // The names end where the help text starts, after two spaces.
                let names = entry.range(of: "  ").map { entry[..<$0.lowerBound] } ?? entry
                for match in names.matches(of: /--[a-z][a-z0-9-]*/) {
                    let option = String(match.output)
                    if option != "--help", option != "--version" { help.options.append(option) }
                }
            default:
                break
            }
        }
        return help
    }

    /// Every command path reachable from `runlog --help`, each with its help.
    static func commandTree() async throws -> [(path: [String], help: Help)] {
        var found: [(path: [String], help: Help)] = []
        var pending: [[String]] = [[]]
        while let path = pending.popLast() {
            let help = try await help(path)
            found.append((path, help))
            pending += help.subcommands.map { path + [$0] }
        }
        return found
    }

    /// The sections of docs/cli.md whose heading is `## \`runlog …\``, by the command words of the heading.
    static func sections() throws -> [(words: [String], text: String)] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/cli.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        var result: [(words: [String], text: String)] = []
        var current: (words: [String], text: String)?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") {
                if let current { result.append(current) }
                current = nil
                if line.hasPrefix("## `runlog ") {
                    let inside = line.dropFirst("## `runlog ".count).prefix { $0 != "`" }
                    let words = inside.split(separator: " ").prefix { $0.wholeMatch(of: /[a-z][a-z0-9-]*/) != nil }
                    current = (words.map(String.init), "")
                }
                continue
            }
            current?.text += line + "\n"
        }
        if let current { result.append(current) }
        return result
    }

    @Test("every command has a section with its options and an example; no section for a command that does not exist")
    func docsMatchHelp() async throws {
        let tree = try await Self.commandTree()
        let sections = try Self.sections()
        let leaves = tree.filter { $0.help.subcommands.isEmpty && !$0.path.isEmpty }
        #expect(leaves.count > 30, "the walk found \(leaves.count) commands")
        for leaf in leaves {
            let name = leaf.path.joined(separator: " ")
            guard let section = sections.first(where: { $0.words == leaf.path }) else {
                Issue.record("docs/cli.md has no \"## `runlog \(name) …`\" section")
                continue
            }
            #expect(section.text.contains("```\n$ runlog \(name)"), "the section of runlog \(name) has no example")
            for option in leaf.help.options where !section.text.contains(option) {
                Issue.record("the section of runlog \(name) does not mention \(option)")
            }
        }
        let known = Set(tree.map { $0.path })
        for section in sections where !known.contains(section.words) {
            Issue.record("docs/cli.md documents runlog \(section.words.joined(separator: " ")), which does not exist")
        }
    }
}
