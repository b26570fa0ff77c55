import Glibc

@testable import RecorderPlugin

/// A fresh folder under /tmp for one test, removed with everything in it by `remove()`.
struct TempDirectory: ~Copyable {
    let path: String

    init(_ label: String = "test") {
        var template = Array("/tmp/berth-recorder-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    deinit {
        Self.removeTree(path)
    }

    static func removeTree(_ path: String) {
        if FileIO.isDirectory(path) {
            for name in (try? FileIO.listDirectory(path)) ?? [] { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Every regular file under `path`, recursively, as full paths, sorted.
func filesUnder(_ path: String) -> [String] {
    var result: [String] = []
    for name in (try? FileIO.listDirectory(path)) ?? [] {
        let full = path + "/" + name
        if FileIO.isDirectory(full) { result += filesUnder(full) } else { result.append(full) }
    }
    return result.sorted()
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "cannot create \(path)")
    defer { close(fd) }
    try bytes.withUnsafeBytes { try FileIO.writeAll(fd: fd, $0, path: path) }
}
