#include "sipex/cli.hpp"

#include <algorithm>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "sipex/build_info.hpp"

namespace sipex {
namespace {

bool parse_ports(const std::string& s, std::vector<uint16_t>& out, std::string& err) {
  out.clear();
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.size() > 5 || !std::all_of(item.begin(), item.end(), ::isdigit)) {
      err = "--sip.ports: '" + item + "' is not a port number";
      return false;
    }
    const unsigned long v = std::stoul(item);
    if (v == 0 || v > 65535) {
      err = "--sip.ports: " + item + " is out of range";
      return false;
    }
    out.push_back(static_cast<uint16_t>(v));
  }
  if (out.empty()) {
    err = "--sip.ports: needs at least one port";
    return false;
  }
  return true;
}

}  // namespace

CliAction parse_cli(int argc, const char* const* argv, Options& o, std::string& message) {
  CLI::App app{"sip_exporter: counts every SIP request and response seen on the wire and exposes them to Prometheus."};
  app.set_version_flag("--version", std::string("sip_exporter ") + kVersion + " (revision " + kRevision + ")");
  app.get_formatter()->column_width(40);
  std::string ports = "5060,5061";
  std::string listen;
  std::string bpf;

  app.add_option("--capture.interface", o.capture.interfaces,
                 "Capture live on this interface ('any' allowed); repeatable")
      ->type_name("IF")->allow_extra_args(false);
  app.add_option("--capture.file", o.capture.files,
                 "Read this pcap or pcapng file instead; repeatable; the run ends when all are read")
      ->type_name("PATH")->allow_extra_args(false);
  app.add_option("--capture.threads", o.capture.threads_per_interface,
                 "Capture threads per interface, spread with PACKET_FANOUT (hash + defrag)")
      ->capture_default_str()->check(CLI::Range(1u, 64u));
  app.add_option("--capture.bpf-filter", bpf,
                 "Kernel filter; default: built from --sip.ports, keeping IP fragments and VLAN-tagged traffic (live only); "
                 "an empty EXPR captures everything")
      ->type_name("EXPR")->expected(0, 1)->default_str("");
  app.add_option("--capture.buffer-size", o.capture.buffer_size, "Kernel ring size per capture thread, bytes")
      ->capture_default_str()->check(CLI::Range(uint64_t{1} << 16, uint64_t{1} << 31));
  app.add_option("--capture.snaplen", o.capture.snaplen, "Snap length, bytes")
      ->capture_default_str()->check(CLI::Range(uint32_t{64}, kMaxSnaplen));
  app.add_option("--sip.ports", ports, "Ports that are SIP for the default filter (comma-separated)")
      ->capture_default_str();
  app.add_option("--workers", o.workers, "Parser/aggregator threads (default: half the CPUs, at least 1)")
      ->check(CLI::Range(1u, 256u));
  app.add_option("--config.file", o.config_file, "YAML file: home networks, peer map, limits")->type_name("PATH");
  app.add_option("--web.listen-address", listen,
                 std::string("Address for /metrics; default ") + kDefaultListenAddress +
                     " (live); files serve /metrics only when this is given")
      ->type_name("HOST:PORT");
  app.add_option("--web.telemetry-path", o.telemetry_path, "Path of the metrics endpoint")->capture_default_str();
  app.add_option("--web.config.file", o.web_config_file,
                 "Exporter-toolkit web configuration: basic_auth_users with bcrypt hashes")
      ->type_name("PATH");
  app.add_option("--web.allow-from", o.web_allow_from,
                 "Only these IPv4 networks may scrape (comma-separated CIDRs); others are refused")
      ->type_name("LIST");
  app.add_option("--runas", o.runas, "When started as root, switch to this user once the captures are open")
      ->type_name("USER");
  app.add_option("--metrics.out", o.metrics_out,
                 "Write the final exposition text to PATH ('-' = stdout) when the run ends")
      ->type_name("PATH");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    message = app.help();
    return CliAction::exit_ok;
  } catch (const CLI::CallForVersion& e) {
    message = e.what();
    message += "\n";
    return CliAction::exit_ok;
  } catch (const CLI::ParseError& e) {
    message = e.what();
    return CliAction::usage_error;
  }

  std::string err;
  if (!parse_ports(ports, o.capture.sip_ports, err)) {
    message = err;
    return CliAction::usage_error;
  }
  if (app.count("--capture.bpf-filter") > 0) {
    o.capture.bpf_filter = bpf;
    o.capture.bpf_filter_set = true;
  }
  if (app.count("--web.listen-address") > 0) {
    o.listen_address = listen;
    o.listen_set = true;
  }
  if (o.capture.interfaces.empty() == o.capture.files.empty()) {
    message = "give either --capture.interface or --capture.file (one or more), not both and not neither";
    return CliAction::usage_error;
  }
  if (o.telemetry_path.empty() || o.telemetry_path[0] != '/') {
    message = "--web.telemetry-path must start with '/'";
    return CliAction::usage_error;
  }
  if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency() / 2);
  if (o.pool_batches == 0) o.pool_batches = std::max<size_t>(64, 16 * o.workers);
  return CliAction::run;
}

}  // namespace sipex
