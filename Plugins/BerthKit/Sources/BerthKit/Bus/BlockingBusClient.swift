import CBerthShim
import Glibc

/// A D-Bus client with no thread of its own: each call blocks the calling thread until its reply (`sd_bus_call`).
/// For a short-lived command-line tool that makes a few calls before the Swift concurrency runtime has started
/// (berthctl's `status`): no bus thread, no hops between threads. Never use it on the cooperative pool, and never
/// from two threads at once; everything else uses `BusConnection`. Replies and errors are those of
/// `BusConnection.call`: the values, `DBusError` for an error reply, `BerthError` for a local failure.
public final class BlockingBusClient {
    private let bus: OpaquePointer
    public let address: BusAddress

    /// Connects (and says Hello) on the calling thread.
    public init(_ address: BusAddress, description: String = "berth") throws {
        bus = try BusConnection.open(address, description: description)
        self.address = address
    }

    deinit { sd_bus_flush_close_unref(bus) }

    public func call(
        _ destination: String, _ path: String, _ interface: String, _ member: String, _ arguments: [DBusValue] = [],
        timeout: Duration = .seconds(25)
    ) throws -> [DBusValue] {
        let message = try BusConnection.methodCall(bus, destination, path, interface, member, arguments)
        defer { sd_bus_message_unref(message) }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer? = nil
        let r = sd_bus_call(bus, message, timeout.microsecondsClamped, &error, &reply)
        defer { if let reply { sd_bus_message_unref(reply) } }
        if r < 0 {
            if sd_bus_error_is_set(&error) != 0 {
                throw DBusError(name: text(error.name), message: text(error.message))
            }
            throw BerthError.failed("cannot call \(interface).\(member) on \(destination): \(systemErrorText(-r))")
        }
        return try BusConnection.result(ofReply: reply).get()
    }

    /// Reads a property through org.freedesktop.DBus.Properties.Get.
    public func getProperty(
        _ destination: String, _ path: String, _ interface: String, _ name: String, timeout: Duration = .seconds(25)
    ) throws -> DBusValue {
        let reply = try call(
            destination, path, "org.freedesktop.DBus.Properties", "Get", [.string(interface), .string(name)],
            timeout: timeout)
        return reply.first?.unwrapped ?? .string("")
    }
}
