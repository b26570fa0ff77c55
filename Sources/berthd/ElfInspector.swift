import BerthKit
import Glibc

/// Just enough ELF reading to tell a bad plugin file apart before `dlopen`: is it ELF at all, and does it carry
/// Swift metadata sections (`swift5_*`), i.e. is it a Swift library?
struct ElfInspector {
    enum Verdict: Equatable {
        case notELF
        case notSwift
        case swift
    }

    static func inspect(_ path: String) throws -> Verdict {
        // A plugin library of a debug build can pass 100 MiB; 1 GiB is no plugin.
        guard let bytes = try FileSystem.read(path, limit: 1 << 30) else {
            throw SystemError("cannot read \"\(path)\"", errno: ENOENT)
        }
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            return .notELF
        }
        guard bytes[4] == 2, bytes[5] == 1 else { return .notSwift }  // only 64-bit little-endian here
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> Int { u32(at) | u32(at + 4) << 32 }
        let sectionOffset = u64(0x28)
        let entrySize = u16(0x3A)
        let count = u16(0x3C)
        let namesIndex = u16(0x3E)
        guard entrySize >= 64, sectionOffset + count * entrySize <= bytes.count, namesIndex < count else {
            return .notSwift
        }
        let namesHeader = sectionOffset + namesIndex * entrySize
        let namesOffset = u64(namesHeader + 0x18)
        let namesSize = u64(namesHeader + 0x20)
        guard namesOffset + namesSize <= bytes.count else { return .notSwift }
        for index in 0..<count {
            var at = namesOffset + u32(sectionOffset + index * entrySize)
            var name: [UInt8] = []
            while at < namesOffset + namesSize, bytes[at] != 0 {
                name.append(bytes[at])
                at += 1
            }
            if name.starts(with: Array("swift5_".utf8)) { return .swift }
        }
        return .notSwift
    }
}
