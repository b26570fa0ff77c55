import CBerthShim
import Glibc
import Synchronization

/// An error reply from a remote method: its D-Bus error name and message.
public struct DBusError: Error, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var message: String
    public init(name: String, message: String) {
        self.name = name
        self.message = message
    }
    public var description: String { message.isEmpty ? name : message }
    /// The berth error code when the name is one of `org.berth.Berth1.Error.*`.
    public var berthCode: BerthError.Code? { BerthError.Code(dbusName: name) }
}

/// A signal as a subscriber receives it.
public struct BusSignalMessage: Sendable {
    public var sender: String
    public var path: String
    public var interface: String
    public var member: String
    public var arguments: [DBusValue]
}

extension BusConnection {
    /// Calls a method and waits for its reply (or the timeout). Error replies throw `DBusError`. When the
    /// connection is closed or lost first, throws at once; when the destination leaves the bus without replying,
    /// the bus daemon answers for it (`org.freedesktop.DBus.Error.NoReply`), which throws too. File descriptors in
    /// the reply are duplicates the caller owns (see `DBusValue`).
    public func call(
        _ destination: String, _ path: String, _ interface: String, _ member: String, _ arguments: [DBusValue] = [],
        timeout: Duration = .seconds(25)
    ) async throws -> [DBusValue] {
        let usec = timeout.microsecondsClamped
        return try await withCheckedThrowingContinuation { continuation in
            let queued = enqueue {
                let message: OpaquePointer
                do {
                    message = try Self.methodCall(self.bus, destination, path, interface, member, arguments)
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                defer { sd_bus_message_unref(message) }
                // The box is kept by `pendingCalls` (sd-bus gets it unretained) and owns the call's slot: the reply,
                // the timeout or the end of the loop finishes it exactly once.
                let box = ReplyBox(continuation, connection: self)
                var slot: OpaquePointer? = nil
                let r = sd_bus_call_async(
                    self.bus, &slot, message, replyTrampoline, Unmanaged.passUnretained(box).toOpaque(), usec)
                guard r >= 0, let slot else {
                    continuation.resume(throwing: BerthError.failed(
                        "cannot call \(interface).\(member) on \(destination): \(systemErrorText(-r))"))
                    return
                }
                box.slot = slot
                self.pendingCalls.withLock { $0[ObjectIdentifier(box)] = box }
            }
            if !queued { continuation.resume(throwing: notConnected) }
        }
    }

    /// A method call message with `arguments` appended (the caller unrefs it).
    static func methodCall(
        _ bus: OpaquePointer, _ destination: String, _ path: String, _ interface: String, _ member: String,
        _ arguments: [DBusValue]
    ) throws -> OpaquePointer {
        var message: OpaquePointer? = nil
        let r = sd_bus_message_new_method_call(bus, &message, destination, path, interface, member)
        guard r >= 0, let message else {
            throw BerthError.invalidArgument(
                "cannot call \(interface).\(member) on \(destination) \(path): \(systemErrorText(-r))")
        }
        do { try MessageCodec.append(message, arguments) } catch {
            sd_bus_message_unref(message)
            throw BerthError.invalidArgument("cannot call \(interface).\(member) on \(destination): argument \(error)")
        }
        return message
    }

    /// A reply as the caller sees it: its values, or the `DBusError` it carries (nil: the call got no reply).
    static func result(ofReply m: OpaquePointer?) -> Result<[DBusValue], any Error> {
        guard let m else { return .failure(DBusError(name: "org.freedesktop.DBus.Error.NoReply", message: "no reply")) }
        if let error = sd_bus_message_get_error(m), sd_bus_error_is_set(error) != 0 {
            return .failure(DBusError(name: text(error.pointee.name), message: text(error.pointee.message)))
        }
        do { return .success(try MessageCodec.readAll(m)) } catch {
            return .failure(BerthError.invalidArgument("cannot read the reply: \(error)"))
        }
    }

    /// Reads a property through org.freedesktop.DBus.Properties.Get.
    public func getProperty(
        _ destination: String, _ path: String, _ interface: String, _ name: String, timeout: Duration = .seconds(25)
    ) async throws -> DBusValue {
        let reply = try await call(
            destination, path, "org.freedesktop.DBus.Properties", "Get", [.string(interface), .string(name)],
            timeout: timeout)
        return reply.first?.unwrapped ?? .string("")
    }

    /// Signals matching the given fields (nil matches anything), from the moment this returns.
    public func signals(
        sender: String? = nil, path: String? = nil, interface: String? = nil, member: String? = nil
    ) async throws -> AsyncStream<BusSignalMessage> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusSignalMessage.self, bufferingPolicy: .unbounded)
        let box = SignalBox(continuation)
        let slot: UnsafeSendable<OpaquePointer> = try await run {
            var slot: OpaquePointer? = nil
            let r = sd_bus_match_signal(
                self.bus, &slot, sender, path, interface, member, signalTrampoline,
                Unmanaged.passUnretained(box).toOpaque())
            if r < 0 { throw BerthError.failed("cannot subscribe to signals: \(systemErrorText(-r))") }
            return UnsafeSendable(slot!)
        }
        continuation.onTermination = { _ in
            self.release {
                sd_bus_slot_unref(slot.value)
                _ = box  // keep the box alive until the slot is gone
            }
        }
        return stream
    }

    /// Requests a well-known name without queueing: throws `.busy` naming the owner if someone has it.
    public func requestName(_ name: String) async throws {
        try await run {
            let r = sd_bus_request_name(self.bus, name, 0)
            if r == -EEXIST {
                throw BerthError.busy("the name \(name) is already owned on \(self.address)")
            }
            if r < 0 { throw BerthError.failed("cannot own \(name) on \(self.address): \(systemErrorText(-r))") }
        }
    }

    public func releaseName(_ name: String) async {
        _ = try? await run { sd_bus_release_name(self.bus, name) }
    }

    /// Calls `onGone` (on the bus thread) once `peer` (a unique name) has left the bus.
    public func trackPeer(_ peer: String, onGone: @escaping @Sendable () -> Void) async throws -> PeerTracker {
        let box = TrackBox(onGone)
        let track: UnsafeSendable<OpaquePointer> = try await run {
            var track: OpaquePointer? = nil
            var r = sd_bus_track_new(self.bus, &track, trackTrampoline, Unmanaged.passUnretained(box).toOpaque())
            if r >= 0 { r = sd_bus_track_add_name(track, peer) }
            guard r >= 0, let track else {
                sd_bus_track_unref(track)
                throw BerthError.failed("cannot track the bus peer \(peer): \(systemErrorText(-r))")
            }
            return UnsafeSendable(track)
        }
        return PeerTracker(connection: self, track: track, box: box)
    }
}

/// A live peer watch; `cancel()` stops it, and so does dropping it (the track and its callback are released on
/// the bus thread, so sd-bus never calls into a freed box).
public final class PeerTracker: Sendable {
    let connection: BusConnection
    private let state: Mutex<(track: UnsafeSendable<OpaquePointer>, box: TrackBox)?>
    init(connection: BusConnection, track: UnsafeSendable<OpaquePointer>, box: TrackBox) {
        self.connection = connection
        self.state = Mutex((track, box))
    }

    /// Stops watching; `onGone` is not called after the bus thread has handled this. Safe to call more than once.
    public func cancel() {
        guard let (track, box) = state.withLock({ s in defer { s = nil }; return s }) else { return }
        connection.release {
            sd_bus_track_unref(track.value)
            _ = box  // the box lives until the track that points at it is gone
        }
    }

    deinit { cancel() }
}

/// One client call waiting for its reply. Lives in `BusConnection.pendingCalls` and owns the call's sd-bus slot;
/// touched only on the bus thread (or after its loop, under its end lock).
final class ReplyBox: @unchecked Sendable {
    let continuation: CheckedContinuation<[DBusValue], any Error>
    unowned let connection: BusConnection
    var slot: OpaquePointer?
    private var finished = false

    init(_ continuation: CheckedContinuation<[DBusValue], any Error>, connection: BusConnection) {
        self.continuation = continuation
        self.connection = connection
    }

    /// Resumes the caller once, releases the slot (sd-bus keeps it alive while it runs our callback) and leaves
    /// `pendingCalls`.
    func finish(_ result: Result<[DBusValue], any Error>) {
        guard !finished else { return }
        finished = true
        if let slot {
            sd_bus_slot_unref(slot)
            self.slot = nil
        }
        connection.pendingCalls.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
        continuation.resume(with: result)
    }
}

final class SignalBox: Sendable {
    let continuation: AsyncStream<BusSignalMessage>.Continuation
    init(_ continuation: AsyncStream<BusSignalMessage>.Continuation) { self.continuation = continuation }
}

final class TrackBox: Sendable {
    let onGone: @Sendable () -> Void
    init(_ onGone: @escaping @Sendable () -> Void) { self.onGone = onGone }
}

/// A C string from sd-bus (nil: empty).
func text(_ pointer: UnsafePointer<CChar>?) -> String { pointer.map { String(cString: $0) } ?? "" }

private let replyTrampoline: sd_bus_message_handler_t = { m, userdata, _ in
    guard let userdata else { return 0 }
    // `pendingCalls` holds the box; keep it alive across `finish`, which removes it from there.
    let box = Unmanaged<ReplyBox>.fromOpaque(userdata).takeUnretainedValue()
    withExtendedLifetime(box) { box.finish(BusConnection.result(ofReply: m)) }
    return 0
}

private let signalTrampoline: sd_bus_message_handler_t = { m, userdata, _ in
    guard let m, let userdata, let arguments = try? MessageCodec.readAll(m) else { return 0 }
    let box = Unmanaged<SignalBox>.fromOpaque(userdata).takeUnretainedValue()
    box.continuation.yield(
        BusSignalMessage(
            sender: text(sd_bus_message_get_sender(m)), path: text(sd_bus_message_get_path(m)),
            interface: text(sd_bus_message_get_interface(m)), member: text(sd_bus_message_get_member(m)),
            arguments: arguments))
    return 0
}

/// Called by sd-bus when the tracked peer has gone. Returns 1: with 0 sd-bus queues the (still empty) track again
/// and calls back on every `sd_bus_process`, a busy loop on the bus thread until the track is released.
private let trackTrampoline: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { _, userdata in
    guard let userdata else { return 1 }
    Unmanaged<TrackBox>.fromOpaque(userdata).takeUnretainedValue().onGone()
    return 1
}
