/// A declarative description of one D-Bus interface on one object: its methods (with argument names and the Swift
/// code that answers them), its properties (with their change behaviour) and its signals. `BusObject` builds the
/// sd-bus vtable from it; introspection, argument checking and PropertiesChanged come from sd-bus.
public struct BusInterface: Sendable {
    public var name: String
    public var methods: [BusMethod]
    public var properties: [BusProperty]
    public var signals: [BusSignal]

    public init(_ name: String, methods: [BusMethod] = [], properties: [BusProperty] = [], signals: [BusSignal] = []) {
        self.name = name
        self.methods = methods
        self.properties = properties
        self.signals = signals
    }
}

/// A named argument: `BusArg("name", "s")`.
public struct BusArg: Sendable, Equatable {
    public var name: String
    public var signature: String
    public init(_ name: String, _ signature: String) {
        self.name = name
        self.signature = signature
    }
}

/// What a method handler sees of the call.
public struct BusCall: Sendable {
    /// The arguments, already checked against the method's signature by sd-bus.
    public var arguments: [DBusValue]
    /// The caller's unique bus name (`:1.42`).
    public var sender: String
    public var path: String
    public var member: String

    public init(arguments: [DBusValue], sender: String, path: String, member: String) {
        self.arguments = arguments
        self.sender = sender
        self.path = path
        self.member = member
    }

    // Typed access; the signature is already checked by sd-bus. An index past the arguments (a bug in the
    // interface) reads as the empty value rather than trapping.
    public func argument(_ index: Int) -> DBusValue? { arguments.indices.contains(index) ? arguments[index] : nil }
    public func string(_ index: Int) -> String { argument(index)?.string ?? "" }
    public func bool(_ index: Int) -> Bool { argument(index)?.bool ?? false }
    public func uint32(_ index: Int) -> UInt32 { argument(index)?.uint32 ?? 0 }
    public func uint64(_ index: Int) -> UInt64 { argument(index)?.uint64 ?? 0 }
    public func double(_ index: Int) -> Double { argument(index)?.double ?? 0 }
    /// An `ay` argument (read in bulk, no per-byte values).
    public func bytes(_ index: Int) -> [UInt8] { argument(index)?.bytes ?? [] }
    /// An `h` argument: a duplicate descriptor the handler owns and must close (nil when absent).
    public func fileDescriptor(_ index: Int) -> Int32? {
        if case .unixFD(let fd)? = argument(index)?.unwrapped { return fd }
        return nil
    }
    /// An `a{sv}` argument as a dictionary of unwrapped values.
    public func options(_ index: Int) -> [String: DBusValue] {
        (argument(index)?.stringKeyed ?? [:]).mapValues(\.unwrapped)
    }
}

public struct BusMethod: Sendable {
    public enum Handler: Sendable {
        /// Runs on the bus thread and replies at once: for quick, non-blocking work only (reads of guarded state).
        case sync(@Sendable (BusCall) throws -> [DBusValue])
        /// Runs in a task; the reply is sent when it returns. Anything that waits or may take time.
        case async(@Sendable (BusCall) async throws -> [DBusValue])
    }

    public var name: String
    public var inputs: [BusArg]
    public var outputs: [BusArg]
    public var handler: Handler

    public init(_ name: String, in inputs: [BusArg] = [], out outputs: [BusArg] = [], _ handler: Handler) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.handler = handler
    }

    public static func sync(
        _ name: String, in inputs: [BusArg] = [], out outputs: [BusArg] = [],
        _ body: @escaping @Sendable (BusCall) throws -> [DBusValue]
    ) -> BusMethod {
        BusMethod(name, in: inputs, out: outputs, .sync(body))
    }

    public static func async(
        _ name: String, in inputs: [BusArg] = [], out outputs: [BusArg] = [],
        _ body: @escaping @Sendable (BusCall) async throws -> [DBusValue]
    ) -> BusMethod {
        BusMethod(name, in: inputs, out: outputs, .async(body))
    }
}

public struct BusProperty: Sendable {
    /// How clients learn of changes (sd-bus `SD_BUS_VTABLE_PROPERTY_*`).
    public enum Change: Sendable {
        /// Never changes while the object exists.
        case const
        /// Emits PropertiesChanged with the new value.
        case emitsChange
        /// Emits PropertiesChanged naming the property (for large values).
        case invalidates
    }

    public var name: String
    public var signature: String
    public var change: Change
    /// For writable properties: checks and applies a new value on the bus thread (quick work only); throw a
    /// BerthError to refuse it. The stored value is updated (and the change emitted) when it returns.
    public var setter: (@Sendable (DBusValue, _ sender: String) throws -> Void)?
    /// The value before the object sets one.
    public var initial: DBusValue

    public init(
        _ name: String, _ signature: String, initial: DBusValue, change: Change = .emitsChange,
        setter: (@Sendable (DBusValue, String) throws -> Void)? = nil
    ) {
        self.name = name
        self.signature = signature
        self.change = change
        self.setter = setter
        self.initial = initial
    }
}

public struct BusSignal: Sendable {
    public var name: String
    public var arguments: [BusArg]
    public init(_ name: String, _ arguments: [BusArg] = []) {
        self.name = name
        self.arguments = arguments
    }
}
