import BerthTestSupport
import Foundation

/// A throw-away certificate authority made with openssl, and a server certificate it signed for 127.0.0.1.
struct TestCA: Sendable {
    let caFile: String
    let certFile: String
    let keyFile: String

    init(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        caFile = directory + "/ca.crt"
        certFile = directory + "/server.crt"
        keyFile = directory + "/server.key"
        let caKey = directory + "/ca.key"
        let csr = directory + "/server.csr"
        let ext = directory + "/server.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: ext, atomically: true, encoding: .utf8)
        let log = directory + "/openssl.log"
        for argv in [
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caFile, "-days",
                "2",
                "-subj", "/CN=berth test CA",
            ],
            [
                "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", csr, "-subj",
                "/CN=127.0.0.1",
            ],
            [
                "openssl", "x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial", "-out",
                certFile,
                "-days", "2", "-extfile", ext,
            ],
        ] {
            guard try runTool(argv, log: log) == 0 else {
                throw TestFailure(
                    "\(argv.joined(separator: " ")) failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
                )
            }
        }
    }
}
