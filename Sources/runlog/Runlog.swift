import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
enum RunlogMain {
    static func main() async {
        // Everything this process creates (data directories, uploads, backups) is private to the
        // owner: the log holds personal data and the hashes of the API keys.
        umask(0o077)
        await Runlog.main()
    }
}

struct Runlog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runlog",
        abstract: "Runlog: an event-sourced workflow platform on an append-only, hash-chained log.",
        version: RunlogVersion.current,
        subcommands: [
            InitCommand.self, ServeCommand.self, KeysCommand.self, ImportCommand.self, ImportsCommand.self,
            LogCommand.self, BackupCommand.self, WorkflowsCommand.self, RunsCommand.self, ConditionCommand.self,
            RolloutCommand.self, DevCommand.self,
        ]
    )
}
