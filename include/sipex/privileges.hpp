// Shedding privileges once the captures and the listening socket are open, before any packet is
// parsed: what is open keeps working, and a parser bug can no longer be a privilege escalation.
#pragma once

#include <string>

namespace sipex {

// Started as root with a --runas user: empties the capability bounding set, switches groups and
// user, and sets no_new_privs, so the process ends with no capability at all. Otherwise (not
// root): clears every capability the process holds (CAP_NET_RAW from file capabilities or
// systemd's AmbientCapabilities is no longer needed once the sockets are open). Returns "" or a
// one-line note on what could not be dropped (a systemd SystemCallFilter may forbid capset; the
// unit bounds the process anyway). Throws std::runtime_error if --runas names an unknown user or
// the switch fails: running on as root was not asked for.
std::string drop_privileges(const std::string& runas);

}  // namespace sipex
