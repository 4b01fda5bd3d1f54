/// The progress line `runlog import` draws on a terminal, as a pure function of the numbers:
///
///     [==========>          ]  52% 1.5/2.9 MiB · 12000 rows · 4000 rows/s · 3 errors · ETA 0:03
///
/// Without a known total (`bytesTotal` nil or 0) there is no bar, percent or ETA.
public enum ImportProgressBar {
    /// The line, at most `width - 1` characters (so it never wraps), without a line end.
    public static func line(bytesRead: Int, bytesTotal: Int?, rows: Int, errors: Int, elapsed: Double,
                            width: Int) -> String {
        let seconds = max(elapsed, 0.001)
        let rate = Int(Double(rows) / seconds)
        var parts: [String] = []
        var fraction: Double?
        if let total = bytesTotal, total > 0 {
            let done = min(max(Double(bytesRead) / Double(total), 0), 1)
            fraction = done
            parts.append(String(repeating: " ", count: max(0, 3 - String(Int(done * 100)).count))
                         + "\(Int(done * 100))% " + bytePair(bytesRead, total))
        }
        parts.append("\(rows) rows")
        parts.append("\(rate) rows/s")
        parts.append(errors == 1 ? "1 error" : "\(errors) errors")
        if let fraction {
            if fraction >= 1 {
                parts.append("ETA 0:00")
            } else if fraction > 0 {
                parts.append("ETA " + clock(seconds * (1 - fraction) / fraction))
            } else {
                parts.append("ETA --:--")
            }
        }
        let text = parts.joined(separator: " · ")
        guard let fraction else { return String(text.prefix(max(0, width - 1))) }
        // "[" + bar + "] " before the text; the bar gets what is left, 10 to 40 columns.
        return withBar(text, fraction: fraction, width: width)
    }

    /// The line while the file is uploaded: `[====>     ]  12% 0.3/2.3 MiB · uploading · 1.2 MiB/s · ETA 0:07`.
    public static func uploadLine(bytesSent: Int, bytesTotal: Int, elapsed: Double, width: Int) -> String {
        let seconds = max(elapsed, 0.001)
        let fraction = bytesTotal > 0 ? min(max(Double(bytesSent) / Double(bytesTotal), 0), 1) : 1
        let percent = Int(fraction * 100)
        var parts = [String(repeating: " ", count: max(0, 3 - String(percent).count)) + "\(percent)% "
                     + bytePair(bytesSent, bytesTotal), "uploading", rate(Double(bytesSent) / seconds)]
        parts.append(fraction >= 1 ? "ETA 0:00" : fraction > 0 ? "ETA " + clock(seconds * (1 - fraction) / fraction)
                     : "ETA --:--")
        return withBar(parts.joined(separator: " · "), fraction: fraction, width: width)
    }

    /// `text` after a bar of 10 to 40 columns, or alone (cut to fit) when the width has no room.
    static func withBar(_ text: String, fraction: Double, width: Int) -> String {
        let room = width - 1
        let barWidth = min(40, room - text.count - 3)
        guard barWidth >= 10 else { return String(text.prefix(max(0, room))) }
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        var bar = String(repeating: "=", count: filled)
        if filled < barWidth {
            bar += ">" + String(repeating: " ", count: barWidth - filled - 1)
        }
        return "[" + bar + "] " + text
    }

    /// Bytes per second: `512 B/s`, `1.2 MiB/s`.
    static func rate(_ perSecond: Double) -> String {
        let units = ["B/s", "KiB/s", "MiB/s", "GiB/s"]
        var value = perSecond
        var unit = 0
        while unit < units.count - 1, value >= 1024 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(Int(value)) B/s" : "\(Double(Int((value * 10).rounded())) / 10) \(units[unit])"
    }

    /// `1.5/2.9 MiB` (the unit of the total for both), or `512 B/2.0 KiB` below 1 KiB.
    static func bytePair(_ read: Int, _ total: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var unit = 0
        var scale = 1.0
        while unit < units.count - 1, Double(total) >= scale * 1024 { scale *= 1024; unit += 1 }
        func number(_ n: Int) -> String {
            unit == 0 ? String(n) : String(Double(Int((Double(n) / scale * 10).rounded())) / 10)
        }
        return number(read) + "/" + number(total) + " " + units[unit]
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 360_000 else { return "--:--" }
        let s = Int(seconds.rounded(.up))
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if s >= 3600 { return "\(s / 3600):\(two(s / 60 % 60)):\(two(s % 60))" }
        return "\(s / 60):\(two(s % 60))"
    }
}
