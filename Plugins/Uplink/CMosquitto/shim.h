// libmosquitto for the uplink plugin (Debian libmosquitto-dev). Nothing here is variadic; the header is wrapped so
// that Swift sees one module.
#ifndef BERTH_CMOSQUITTO_H
#define BERTH_CMOSQUITTO_H
#include <mosquitto.h>
#endif
