import BerthKit
import Glibc

/// Where the recorder keeps things under its storage folder:
///
///     <storage>/metadata.db
///     <storage>/recordings/YYYY/MM/DD/<YYYYmmdd_HHMMSS>_<id>.wav      finished recordings
///     <storage>/recordings/.partial/<startUSec>_<id>.wav.partial       being written (same filesystem)
///
/// The partial name carries what crash recovery needs to finish the file: its start and its id.
struct RecordingLayout: Sendable {
    let storage: String
    /// Zone of the date folders and file-name stamps.
    let fileZone: TimeZoneRules

    var recordings: String { storage + "/recordings" }
    var partials: String { recordings + "/.partial" }
    var database: String { storage + "/metadata.db" }

    static let partialSuffix = ".wav.partial"

    func partialPath(id: String, startUSec: Int64) -> String {
        "\(partials)/\(startUSec)_\(id)\(Self.partialSuffix)"
    }

    /// The final path of a recording.
    func finalPath(id: String, startUSec: Int64) -> String {
        let local = fileZone.civil(atUSec: startUSec)
        let date = local.date
        return
            "\(recordings)/\(pad(date.year, 4))/\(pad(date.month, 2))/\(pad(date.day, 2))/\(local.compactStamp)_\(id).wav"
    }

    /// Start and id from a partial file name; nil for anything else.
    static func parsePartialName(_ name: String) -> (startUSec: Int64, id: String)? {
        guard name.hasSuffix(partialSuffix) else { return nil }
        let stem = name.dropLast(partialSuffix.count)
        guard let underscore = stem.firstIndex(of: "_"), let start = Int64(stem[..<underscore]) else { return nil }
        let id = String(stem[stem.index(after: underscore)...])
        guard RecordingID.isValid(id) else { return nil }
        return (start, id)
    }

    /// Creates the folders.
    func prepare() throws {
        try FileIO.makeDirectories(partials)
    }

    /// Moves a finished partial file to its final path, creating the date folders, and makes the move durable.
    func publish(partial: String, to final: String) throws {
        let folder = String(final[..<final.lastIndex(of: "/")!])
        try FileIO.makeDirectories(folder)
        try FileIO.rename(partial, to: final)
        try FileIO.syncDirectory(folder)
        try FileIO.syncDirectory(partials)
    }

    /// Partial files present now, with what their names say.
    func partialFiles() throws -> [(path: String, startUSec: Int64?, id: String?)] {
        try FileIO.listDirectory(partials).sorted().map { name in
            let parsed = Self.parsePartialName(name)
            return ("\(partials)/\(name)", parsed?.startUSec, parsed?.id)
        }
    }
}

/// Random identifiers for recordings and deployments: RFC 4122 version 4 UUIDs in lower case (acoupi's ids).
enum RecordingID {
    static func make() -> String {
        // SystemRandomNumberGenerator reads getrandom(2): cryptographically secure, never blocks after boot.
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let hex = bytes.map { pad2hex($0) }.joined()
        let chars = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(chars[$0]) }.joined(separator: "-")
    }

    static func isValid(_ id: String) -> Bool {
        let chars = Array(id.utf8)
        guard chars.count == 36 else { return false }
        for (i, c) in chars.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                guard c == UInt8(ascii: "-") else { return false }
            } else {
                guard (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) else { return false }
            }
        }
        return true
    }

    private static func pad2hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}
