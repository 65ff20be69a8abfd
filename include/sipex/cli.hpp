// The command line (DESIGN section 3): dotted flags like node_exporter's.
#pragma once

#include <string>
#include <vector>

#include "sipex/capture.hpp"

namespace sipex {

inline constexpr const char* kDefaultListenAddress = ":9573";

struct Options {
  CaptureOptions capture;
  unsigned workers = 0;            // 0: half the CPUs, at least 1
  size_t pool_batches = 0;         // 0: 16 per worker, at least 64
  std::string config_file;
  std::string listen_address = kDefaultListenAddress;
  bool listen_set = false;         // given explicitly (file mode serves /metrics only then)
  std::string telemetry_path = "/metrics";
  std::string metrics_out;         // "" = none, "-" = stdout
  std::string web_config_file;     // exporter-toolkit web config: basic auth users
  std::string web_allow_from;      // networks allowed to scrape, comma-separated; "" = all
  std::string runas;               // user to switch to once captures are open (when root)
};

enum class CliAction { run, exit_ok, usage_error };

// Parses argv. On usage_error, `message` is a one-line explanation; on exit_ok (--help,
// --version) it is the text to print.
CliAction parse_cli(int argc, const char* const* argv, Options& out, std::string& message);

// Exit codes (DESIGN section 3).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a file, interface or config that cannot be used
inline constexpr int kExitUsage = 2;    // bad flags

}  // namespace sipex
