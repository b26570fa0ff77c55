// The C entry symbols of libServicesPlugin.so (see Package.swift for why they live apart from the logic).
import BerthKit
import ServicesPlugin
