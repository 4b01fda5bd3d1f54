/// Who executes which work (runs, importer runs) when several nodes share one log.
///
/// Each node process holds a lease of its own while it lives; the events it appends are written
/// under that lease. Work belongs to the lease that wrote the event creating it (a run's
/// `run.created`, an imported batch, an importer run's start), so the node that created work is
/// the one that executes it. When a node stops renewing its lease (it died, or was cut off for
/// longer than the lease lasts), another node takes the lease over, with every lease it held,
/// and executes that work from its recorded history.
///
/// Taking over is the fence: it happens in the log's order of commits, and a node whose lease
/// was taken can commit nothing more (its appends fail), so the history the new owner resumes
/// from is the last one the old owner wrote. The stream versions of a run are the second fence:
/// a run's events are appended with the version its executor saw.
///
/// A store that only one process writes (LMDB) has none (`EventStore.workLeases` is nil): the
/// process executes all the work in its log.
public protocol WorkLeases: Sendable {
    /// The takeovers of this node, from the first: at start, the node takes the work of its own
    /// previous process and of leases that expired; later, each time another node's lease expires.
    /// Each new sequence starts again from the first takeover. It ends when the store closes.
    func takeovers() -> AsyncStream<WorkTakeover>
    /// Of `positions` (of events creating work), those written under a lease of `takeover`.
    func written(_ positions: [UInt64], in takeover: WorkTakeover) async throws(EventStoreError) -> Set<UInt64>
}

/// Leases this node took over, and the head of the log when it did: the work they own is the
/// work left unfinished in the log up to that head.
public struct WorkTakeover: Sendable, Hashable {
    /// The leases taken (opaque numbers of the store).
    public var leases: [Int64]
    /// The log's head when they were taken.
    public var head: UInt64

    public init(leases: [Int64], head: UInt64) {
        self.leases = leases
        self.head = head
    }
}
