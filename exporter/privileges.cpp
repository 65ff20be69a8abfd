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

// capset(2) with empty sets; glibc has no wrapper.
bool clear_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string drop_privileges(const std::string& runas) {
  if (geteuid() == 0 && !runas.empty()) {
    errno = 0;
    const passwd* pw = getpwnam(runas.c_str());
    if (pw == nullptr) throw std::runtime_error("--runas: no user '" + runas + "'");
    // Root's capabilities come back on exec unless the bounding set is empty.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
      throw std::runtime_error("--runas " + runas + ": " + errno_text());
    }
    // setuid() from root to a non-root uid clears the permitted and effective sets (no
    // keep-caps), ambient ones with them.
    if (setuid(0) == 0) throw std::runtime_error("--runas " + runas + ": could still regain root");
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return "";
  }
  if (geteuid() == 0) return "running as root: give --runas=USER to drop privileges after opening the captures";
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (!clear_capabilities()) return "could not clear capabilities (" + errno_text() + ")";
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return "";
}

}  // namespace sipex
