/// The runs of the read models: the records in one array, in the order they were created, and
/// a dictionary from run id to place.
///
/// A `[String: RunRecord]` keeps each record in its hash table, whose buckets run a quarter
/// empty and double when full, so a run cost up to four times its record's size there (about
/// 1 KB each at 100,000 runs). Here a bucket holds an id and an index, and the records sit
/// densely in the array. Creation order is log order, so rebuilding gives an equal table.
public struct RunTable: Sendable, Equatable {
    private var places: [String: Int] = [:]
    /// Every run, oldest first.
    public private(set) var values: ContiguousArray<RunRecord> = []

    public init() {}

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }

    public subscript(id: String) -> RunRecord? {
        places[id].map { values[$0] }
    }

    /// Where the run `id` is in `values`, or nil.
    public func index(forKey id: String) -> Int? { places[id] }

    /// Adds a run, or replaces the one with the same id.
    mutating func put(_ record: RunRecord) {
        // One hash of the id for a new run (nearly every put): claim the next place, and give
        // the old place back in the rare replacement.
        if let place = places.updateValue(values.count, forKey: record.id) {
            places[record.id] = place
            values[place] = record
        } else {
            values.append(record)
        }
    }

    /// Changes the run at `index` (from `index(forKey:)`) in place.
    mutating func update(at index: Int, _ change: (inout RunRecord) -> Void) {
        change(&values[index])
    }

    mutating func reserveCapacity(_ count: Int) {
        places.reserveCapacity(count)
        values.reserveCapacity(count)
    }
}
