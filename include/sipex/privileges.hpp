// Shedding privileges once the captures and the listening socket are open, before any packet is
// parsed: what is open keeps working, and a parser bug can no longer be a privilege escalation.
//
// Capabilities, the bounding set and no_new_privs belong to each thread, and a thread inherits
// them from the one that creates it; only the user and group switch is applied to every thread
// (glibc broadcasts it). So the steps are split around the start of the web server's threads:
//   PrivilegeDrop drop(runas);   // resolves the user: an unknown one fails before anything opens
//   ... open the captures (needs CAP_NET_RAW) ...
//   drop.before_threads();       // every later thread inherits the reduced set
//   ... start the web server (may bind a port below 1024 when root) ...
//   drop.finish();               // root: switch user and group, in every thread
//   ... start capture and worker threads ...
#pragma once

#include <string>
#include <sys/types.h>

namespace sipex {

class PrivilegeDrop {
 public:
  // Throws std::runtime_error if `runas` (may be empty) names no user.
  explicit PrivilegeDrop(const std::string& runas);

  // Root with a --runas user: empties the bounding set and sets no_new_privs; root keeps its
  // effective capabilities until finish(). Not root: clears every capability (CAP_NET_RAW from
  // file capabilities or systemd's AmbientCapabilities is no longer needed once the captures are
  // open) and sets no_new_privs. Returns "" or a one-line note on what could not be done (a
  // systemd SystemCallFilter may forbid capset; the unit bounds the process anyway).
  std::string before_threads();
  // Root with a --runas user: switches groups and user in every thread, which leaves no
  // capability. Throws std::runtime_error if the switch fails. Otherwise returns a note if the
  // process still runs as root.
  std::string finish();

 private:
  std::string runas_;
  bool root_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace sipex
