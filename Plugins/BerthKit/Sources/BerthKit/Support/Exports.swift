// BerthKit re-exports swift-log: the daemon and the plugins get `Logger` from here and nowhere else, so that one
// copy of its global state (the bootstrapped handler) is shared across the plugin boundary.
@_exported import Logging
