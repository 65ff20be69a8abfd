#include "sipex/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sipex {
namespace {

// capset(2) with empty sets for the calling thread; glibc has no wrapper.
bool clear_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

PrivilegeDrop::PrivilegeDrop(const std::string& runas) : runas_(runas), root_(geteuid() == 0) {
  if (runas_.empty()) return;
  errno = 0;
  const passwd* pw = getpwnam(runas_.c_str());
  if (pw == nullptr) throw std::runtime_error("--runas: no user '" + runas_ + "'");
  uid_ = pw->pw_uid;
  gid_ = pw->pw_gid;
}

std::string PrivilegeDrop::before_threads() {
  if (root_) {
    if (runas_.empty()) return "";
    // Root's capabilities come back on exec unless the bounding set is empty.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return "";
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (!clear_capabilities()) return std::string("could not clear capabilities (") + std::strerror(errno) + ")";
  return "";
}

std::string PrivilegeDrop::finish() {
  if (!root_) return "";
  if (runas_.empty()) return "running as root: give --runas=USER to drop privileges after opening the captures";
  // glibc applies set*id to every thread; leaving uid 0 clears every thread's capabilities
  // (no keep-caps), ambient ones with them.
  if (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0) {
    throw std::runtime_error("--runas " + runas_ + ": " + std::strerror(errno));
  }
  if (setuid(0) == 0) throw std::runtime_error("--runas " + runas_ + ": could still regain root");
  return "";
}

}  // namespace sipex
