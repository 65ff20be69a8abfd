// Running under systemd: readiness, reload and stop notifications and the watchdog, through
// libsystemd's sd_notify. Every call is a no-op when the process was not started by systemd
// (NOTIFY_SOCKET unset).
#pragma once

#include <chrono>
#include <string>

namespace sipex::service {

// READY=1 with a STATUS line; also ends a reload.
void ready(const std::string& status);
// RELOADING=1: a configuration reload has started (ready() ends it).
void reloading();
// STOPPING=1.
void stopping();
// How often watchdog() must be called to keep systemd from restarting the service: half of
// WatchdogSec=, or zero when the watchdog is off.
std::chrono::microseconds watchdog_period();
// WATCHDOG=1: the service is alive and making progress.
void watchdog();

}  // namespace sipex::service
