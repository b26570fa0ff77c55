// The C entry symbols of libPickupPlugin.so (see Package.swift for why they live apart from the logic).
import BerthKit
import PickupPlugin
