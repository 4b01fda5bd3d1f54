import ArgumentParser
import EventLog
import LMDBStore

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an empty data directory (nothing happens if it already holds a log)."
    )

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let opened = try await store.open(readOnly: false)
        let head = try opened.head()
        opened.close()
        print("data directory \(store.directory) ready (\(head.position) events)")
    }
}
