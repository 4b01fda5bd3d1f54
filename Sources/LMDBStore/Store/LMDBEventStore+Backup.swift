public import EventLog
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LMDBEventStore {
    /// Writes a consistent, compacted copy of the log into the directory `destination`, which
    /// must not exist or be empty (it is made with mode 0700, the copy with 0600).
    ///
    /// The copy is LMDB's (`mdb_env_copy2` with `MDB_CP_COMPACT`): one read transaction's snapshot,
    /// so it holds every event up to some position and nothing half-written, while a writer (the
    /// server) goes on appending. Free pages are left out. Works on a read-only store.
    public func backup(to destination: String) throws(EventStoreError) {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: destination, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw EventStoreError.invalid("backup directory", destination, "must be a directory or not exist")
            }
            let contents = (try? fm.contentsOfDirectory(atPath: destination)) ?? []
            guard contents.isEmpty else {
                throw EventStoreError.invalid("backup directory", destination,
                                              "must be empty or not exist (it holds \(contents.count) entries)")
            }
        } else {
            try Self.makePrivateDirectory(destination)
        }
        do {
            try env.copy(to: destination, compact: true)
        } catch let error as LMDBError {
            // Leave no partial copy that could pass for a backup.
            unlink(destination + "/" + DataFile.name)
            if error == .closed { throw .closedStore }
            if LMDBError.damage.contains(error) {
                throw DataFile.damaged(directory + "/" + DataFile.name, "LMDB says: \(error)")
            }
            throw .storage(error, "cannot copy the log to \(destination)")
        } catch {
            unlink(destination + "/" + DataFile.name)
            throw EventStoreError(.storage, "cannot copy the log to \(destination): \(error)")
        }
        _ = chmod(destination + "/" + DataFile.name, 0o600)
    }
}
