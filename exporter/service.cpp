#include "sipex/service.hpp"

#include <systemd/sd-daemon.h>

namespace sipex::service {

void ready(const std::string& status) { sd_notify(0, ("READY=1\nSTATUS=" + status).c_str()); }

void reloading() { sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration"); }

void stopping() { sd_notify(0, "STOPPING=1"); }

std::chrono::microseconds watchdog_period() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec / 2);
}

void watchdog() { sd_notify(0, "WATCHDOG=1"); }

}  // namespace sipex::service
