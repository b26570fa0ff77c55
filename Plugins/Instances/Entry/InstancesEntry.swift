// The C entry symbols of libInstancesPlugin.so (see Package.swift for why they live apart from the logic).
import BerthKit
import InstancesPlugin
