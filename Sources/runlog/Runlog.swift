import ArgumentParser

@main
struct Runlog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runlog",
        abstract: "Runlog: an event-sourced workflow platform on an append-only, hash-chained log.",
        subcommands: [
            InitCommand.self, ServeCommand.self, KeysCommand.self, ImportCommand.self, LogCommand.self, WorkflowsCommand.self,
            RunsCommand.self, ConditionCommand.self, RolloutCommand.self, DevCommand.self,
        ]
    )
}
