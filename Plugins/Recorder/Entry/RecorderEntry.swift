// The C entry symbols of libRecorderPlugin.so (see Package.swift for why they live apart from the logic).
import BerthKit
import RecorderPlugin
