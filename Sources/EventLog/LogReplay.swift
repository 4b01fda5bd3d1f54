import RunlogJSON

/// The start-up of the read models: one pass over the log feeds every model that registered,
/// instead of one pass each. Each model registers the event types it folds (nil: all of them)
/// and a fold that gets the envelope in place; `run` reads the log once, up to the head it finds
/// first, and calls the folds in log order, in the order they registered.
///
/// Not for concurrent use: register, run once, then read what the folds built.
public final class LogReplay {
    private struct Fold {
        /// The types' UTF-8, nil for every type.
        let types: [[UInt8]]?
        let body: (EventView) throws -> Void
    }

    private var folds: [Fold] = []
    /// The passes over the log `run` made (one, or zero before it ran).
    public private(set) var passes = 0

    public init() {}

    /// Adds a fold of the events of `types` (every event when nil).
    public func register(types: Set<String>?, _ body: @escaping (EventView) throws -> Void) {
        folds.append(Fold(types: types.map { $0.map { Array($0.utf8) } }, body: body))
    }

    /// Reads the log from position 1 to its head once, calling each fold with the events it
    /// registered for, and returns that head. An error a fold throws ends the replay.
    @discardableResult
    public func run(_ store: any EventStore) throws -> LogHead {
        let head = try store.head()
        passes += 1
        guard head.position > 0, !folds.isEmpty else { return head }
        try store.forEachView(from: 1) { view in
            guard view.position <= head.position else { return false }
            let type = view.typeBytes
            for fold in folds {
                if let types = fold.types, !types.contains(where: { $0.withUnsafeBytes { type.equals($0) } }) { continue }
                try fold.body(view)
            }
            return true
        }
        return head
    }
}
