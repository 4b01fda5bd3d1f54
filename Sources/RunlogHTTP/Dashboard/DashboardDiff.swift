/// A line diff of two texts (the longest common subsequence of their lines), for comparing two
/// versions' definitions. Texts of more than `maxCells` line pairs (a megabyte of table) are shown as removed then added.
enum DashboardDiff {
    enum Kind: String { case same, added, removed }

    struct Line: Equatable {
        let kind: Kind
        let text: String
    }

    static let maxCells = 1_000_000

    static func lines(_ old: String, _ new: String) -> [Line] {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard a.count * b.count <= maxCells else {
            return a.map { Line(kind: .removed, text: $0) } + b.map { Line(kind: .added, text: $0) }
        }
        // common[i][j]: the longest common subsequence of a[i...] and b[j...].
        let width = b.count + 1
        var common = [Int](repeating: 0, count: (a.count + 1) * width)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                common[i * width + j] = a[i] == b[j] ? common[(i + 1) * width + j + 1] + 1
                    : max(common[(i + 1) * width + j], common[i * width + j + 1])
            }
        }
        var out: [Line] = []
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append(Line(kind: .same, text: a[i]))
                i += 1
                j += 1
            } else if j < b.count, i == a.count || common[i * width + j + 1] >= common[(i + 1) * width + j] {
                out.append(Line(kind: .added, text: b[j]))
                j += 1
            } else {
                out.append(Line(kind: .removed, text: a[i]))
                i += 1
            }
        }
        return out
    }
}
