/// Reads the parts of a TZif file (RFC 8536, versions 1-4) that give UTC offsets: transition times, the type in
/// force after each, type 0 for earlier instants, and (version 2+) the footer TZ rule. Leap seconds are ignored
/// (the `right/` zones are not supported).
enum TZifParser {
    struct Result {
        var transitions: [Int64]
        var offsets: [Int32]
        var initialOffset: Int32
        var footer: PosixTZRule?
    }

    private struct Header {
        var version: UInt8
        var isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: Int

        func dataSize(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    static func parse(_ bytes: [UInt8]) -> Result? {
        guard let first = header(bytes, at: 0) else { return nil }
        var offset = 44
        var timeSize = 4
        var active = first
        if first.version >= 2 {
            // Skip the 32-bit block; the 64-bit one after the second header is authoritative.
            offset += first.dataSize(timeSize: 4)
            guard let second = header(bytes, at: offset) else { return nil }
            active = second
            offset += 44
            timeSize = 8
        }
        guard offset + active.dataSize(timeSize: timeSize) <= bytes.count, active.typecnt > 0 else { return nil }
        var transitions: [Int64] = []
        transitions.reserveCapacity(active.timecnt)
        for i in 0..<active.timecnt {
            let at = offset + i * timeSize
            transitions.append(
                timeSize == 8 ? Int64(bitPattern: be64(bytes, at)) : Int64(Int32(bitPattern: be32(bytes, at))))
        }
        offset += active.timecnt * timeSize
        let typeIndices = Array(bytes[offset..<offset + active.timecnt])
        offset += active.timecnt
        var typeOffsets: [Int32] = []
        for i in 0..<active.typecnt {
            typeOffsets.append(Int32(bitPattern: be32(bytes, offset + i * 6)))
        }
        offset += active.typecnt * 6
        offset += active.charcnt + active.leapcnt * (timeSize + 4) + active.isstdcnt + active.isutcnt
        var offsets: [Int32] = []
        for index in typeIndices {
            guard Int(index) < typeOffsets.count else { return nil }
            offsets.append(typeOffsets[Int(index)])
        }
        var footer: PosixTZRule?
        if first.version >= 2, offset < bytes.count, bytes[offset] == 0x0a {
            let rest = bytes[(offset + 1)...]
            if let newline = rest.firstIndex(of: 0x0a), newline > offset + 1 {
                footer = PosixTZRule(String(decoding: bytes[(offset + 1)..<newline], as: UTF8.self))
            }
        }
        return Result(transitions: transitions, offsets: offsets, initialOffset: typeOffsets[0], footer: footer)
    }

    private static func header(_ bytes: [UInt8], at offset: Int) -> Header? {
        guard offset + 44 <= bytes.count, Array(bytes[offset..<offset + 4]) == Array("TZif".utf8) else { return nil }
        func count(_ i: Int) -> Int { Int(be32(bytes, offset + 20 + i * 4)) }
        let version = bytes[offset + 4] == 0 ? 1 : bytes[offset + 4] &- 0x30
        return Header(
            version: version, isutcnt: count(0), isstdcnt: count(1), leapcnt: count(2), timecnt: count(3),
            typecnt: count(4), charcnt: count(5))
    }

    private static func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    private static func be64(_ b: [UInt8], _ i: Int) -> UInt64 {
        UInt64(be32(b, i)) << 32 | UInt64(be32(b, i + 4))
    }
}
