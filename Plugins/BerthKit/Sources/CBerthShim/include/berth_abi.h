// The plugin ABI key: one C string, built at compile time by string-literal concatenation, so that a copy compiled
// into a plugin (PluginABI.key is @_alwaysEmitIntoClient) records what the PLUGIN was built with and against:
//   - CBERTH_ABI_REVISION: BerthKit's version and API revision (bumped by hand for a change the hash cannot see,
//     such as what a function does rather than its signature);
//   - CBERTH_ABI_INTERFACE: sha256 of BerthKit's whole public interface as the built module shows it (generated into
//     berth_abi_interface.h by PluginABITests with BERTH_UPDATE_ABI_LOCK=1; the test fails when it is stale);
//   - __VERSION__: the compiler that compiles this header, i.e. the Swift toolchain's built-in clang, whose version
//     names the exact llvm-project revision of that toolchain build.
// The host compares the plugin's key with its own (compiled into libBerthKit.so) before any Swift type crosses.
#ifndef CBERTH_ABI_H
#define CBERTH_ABI_H

#include "berth_abi_interface.h"

#define CBERTH_ABI_REVISION "berthkit 0.1 api 6"

static inline const char *cberth_abi_key(void) {
    return CBERTH_ABI_REVISION " interface " CBERTH_ABI_INTERFACE " compiler " __VERSION__;
}

#endif
