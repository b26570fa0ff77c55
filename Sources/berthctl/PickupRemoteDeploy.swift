import BerthKit
import Glibc

extension PickupDeployCommand {
    /// `pickup deploy FILE` to a host over SSH: berthd there cannot open a path of this machine and a descriptor
    /// does not cross systemd-stdio-bridge, so the file's bytes go with the call (`Deploy`, within the host's
    /// `max_upload_bytes`).
    func deployUpload(_ connection: BusConnection) async throws -> [DBusValue] {
        if fd { throw CLIError("--fd passes a descriptor, which cannot cross SSH; without --fd the file is uploaded") }
        guard let bytes = try FileSystem.read(file) else { throw CLIError("cannot read \(file): it does not exist") }
        return try await connection.pickup(
            "Deploy", [.string(FileSystem.baseName(file)), .bytes(bytes), .string(target.isEmpty ? "files" : target)],
            timeout: .seconds(timeout))
    }
}
