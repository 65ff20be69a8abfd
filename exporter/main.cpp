// sip_exporter: wiring only. Flags -> config -> pipeline -> exposition; every behaviour lives in
// the stage files next to this one.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include <prometheus/exposer.h>

#include "sipex/cli.hpp"
#include "sipex/config.hpp"
#include "sipex/metrics.hpp"
#include "sipex/pipeline.hpp"
#include "sipex/sip_scan.hpp"

namespace {

void log(const std::string& msg) { std::fprintf(stderr, "sip_exporter: %s\n", msg.c_str()); }

// node_exporter style ":9573" means every address; civetweb wants a bare port for that.
std::string civetweb_address(const std::string& a) { return (!a.empty() && a[0] == ':') ? a.substr(1) : a; }

}  // namespace

int main(int argc, char** argv) {
  using namespace sipex;
  Options opt;
  std::string msg;
  switch (parse_cli(argc, argv, opt, msg)) {
    case CliAction::exit_ok:
      std::cout << msg;
      return kExitOk;
    case CliAction::usage_error:
      std::fprintf(stderr, "sip_exporter: %s (see --help)\n", msg.c_str());
      return kExitUsage;
    case CliAction::run: break;
  }

  // Signals are taken synchronously by the main thread: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    const Config cfg = opt.config_file.empty() ? Config{} : load_config(opt.config_file);
    if (const char* e = kernel_selection_error()) log(e);

    Pipeline pipeline(opt, cfg);
    pipeline.open();
    auto collector = std::make_shared<SipCollector>(pipeline.metric_sources());

    std::unique_ptr<prometheus::Exposer> exposer;
    if (!opt.capture.interfaces.empty() || opt.listen_set) {
      exposer = std::make_unique<prometheus::Exposer>(civetweb_address(opt.listen_address), 2);
      exposer->RegisterCollectable(collector, opt.telemetry_path);
      const auto ports = exposer->GetListeningPorts();
      log("serving " + opt.telemetry_path + " on port " + (ports.empty() ? std::string("?") : std::to_string(ports[0])));
    }

    pipeline.start();
    for (;;) {
      const int sig = pipeline.wait(signals);
      if (sig == SIGHUP) continue;  // reloading the config arrives with the systemd unit
      break;
    }
    pipeline.stop();

    const auto errors = pipeline.errors();
    for (const std::string& e : errors) log("error: " + e);
    if (!opt.metrics_out.empty()) write_metrics(*collector, opt.metrics_out);
    return errors.empty() ? kExitOk : kExitFailure;
  } catch (const std::exception& e) {
    log(std::string("error: ") + e.what());
    return kExitFailure;
  }
}
