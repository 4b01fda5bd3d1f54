import ArgumentParser
import EventLog
import LMDBStore
import Foundation

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a data directory, live or not, into DEST and verify the copy.",
        discussion: """
            The log is copied from one snapshot with LMDB's compacting copy while the server goes on \
            writing; then uploads/ and secret.key are copied and the copy's hash chain is verified. \
            DEST must not exist or be empty; it is made with mode 0700. Exit 0 when the copy \
            verifies, 1 otherwise.
            """
    )

    @OptionGroup var store: StoreOptions
    @Argument(help: "The directory to write the backup to.") var destination: String
    @Flag(name: .customLong("without-secret-key"),
          help: "Leave secret.key out (a stolen backup then holds no usable account secret).")
    var withoutSecretKey = false

    func run() async throws {
        let source = try store.openDataDirectory(readOnly: true)
        do {
            try source.backup(to: destination)
        } catch {
            source.close()
            throw CLIError(error.message)
        }
        source.close()
        // Uploaded files are written once under new names, so copying them after the snapshot
        // gives every file the copied log names.
        var copied = 0
        let uploads = store.directory + "/uploads"
        let fm = FileManager.default
        if fm.fileExists(atPath: uploads) {
            try copyFile(uploads, to: destination + "/uploads", directory: true)
            for name in try fm.contentsOfDirectory(atPath: uploads).sorted() where !name.hasPrefix(".") {
                try copyFile(uploads + "/" + name, to: destination + "/uploads/" + name)
                copied += 1
            }
        }
        let key = store.directory + "/secret.key"
        let keyCopied = !withoutSecretKey && fm.fileExists(atPath: key)
        if keyCopied { try copyFile(key, to: destination + "/secret.key") }

        let copy: LMDBEventStore
        do {
            copy = try LMDBEventStore(directory: destination, options: .init(readOnly: true))
        } catch {
            throw CLIError("the backup in \(destination) cannot be opened: \(error.message)")
        }
        defer { copy.close() }
        let report: VerifyReport
        do {
            report = try copy.verify()
        } catch {
            throw CLIError("the backup in \(destination) cannot be verified: \(error.message)")
        }
        switch report {
        case .intact(let count, let head):
            print("backup \(destination): \(count) events, head hash \(head.hex); the copy verifies; "
                  + "\(copied) uploaded file\(copied == 1 ? "" : "s")"
                  + (keyCopied ? ", secret.key" : ""))
        case .broken(let position, let reason):
            print("the backup in \(destination) is broken at position \(position): \(reason)")
            throw ExitCode(1)
        }
    }

    /// Copies a file (mode 0600) or makes a directory (0700).
    private func copyFile(_ from: String, to: String, directory: Bool = false) throws {
        do {
            if directory {
                try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } else {
                try FileManager.default.copyItem(atPath: from, toPath: to)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: to)
            }
        } catch {
            throw CLIError("cannot copy \(from) to \(to): \(error.localizedDescription)")
        }
    }
}
