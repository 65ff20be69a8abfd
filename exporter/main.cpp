// sip_exporter: wiring only. Flags -> config -> pipeline -> exposition; every behaviour lives in
// the stage files next to this one.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "sipex/cli.hpp"
#include "sipex/config.hpp"
#include "sipex/metrics.hpp"
#include "sipex/pipeline.hpp"
#include "sipex/privileges.hpp"
#include "sipex/service.hpp"
#include "sipex/sip_scan.hpp"
#include "sipex/web.hpp"

namespace {

void log(const std::string& msg) { std::fprintf(stderr, "sip_exporter: %s\n", msg.c_str()); }

// SIGHUP: re-reads --config.file. A file that does not load leaves the running configuration in
// place (the service must not die of a typo); counters are never reset.
void reload(const sipex::Options& opt, sipex::Pipeline& pipeline) {
  if (opt.config_file.empty()) {
    log("SIGHUP: no --config.file to reload");
    return;
  }
  try {
    const sipex::Config cfg = sipex::load_config(opt.config_file);
    for (const std::string& name : pipeline.reload(cfg)) log("reload: peer '" + name + "' exceeds limits.max_peers; its traffic counts as \"other\"");
    log("reloaded " + opt.config_file);
  } catch (const std::exception& e) {
    log(std::string("reload failed, keeping the running configuration: ") + e.what());
  }
}

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

    PrivilegeDrop privileges(opt.runas);
    Pipeline pipeline(opt, cfg);
    pipeline.open();
    // The captures are open: shed privileges before any thread starts (threads inherit them).
    const bool live = !opt.capture.interfaces.empty();
    if (const std::string note = privileges.before_threads(); !note.empty() && live) log(note);
    auto collector = std::make_shared<SipCollector>(pipeline.metric_sources());

    std::unique_ptr<WebEndpoint> web;
    if (live || opt.listen_set) {
      const WebConfig web_cfg = opt.web_config_file.empty() ? WebConfig{} : load_web_config(opt.web_config_file);
      web = std::make_unique<WebEndpoint>(opt.listen_address, opt.telemetry_path, web_cfg, opt.web_allow_from, collector);
      const auto ports = web->ports();
      log("serving " + opt.telemetry_path + " on port " + (ports.empty() ? std::string("?") : std::to_string(ports[0])));
    }
    // Everything privileged is open: finish the drop before the first packet is parsed.
    if (const std::string note = privileges.finish(); !note.empty() && live) log(note);

    pipeline.start();
    service::ready("capturing on " + std::to_string(opt.capture.interfaces.size() + opt.capture.files.size()) +
                   " source(s) with " + std::to_string(opt.workers) + " worker(s)");
    const auto watchdog = service::watchdog_period();
    const auto tick = watchdog.count() > 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(watchdog)
                                           : std::chrono::milliseconds(1000);
    for (;;) {
      const int sig = pipeline.wait(signals, tick);
      if (sig == -1) {
        // The watchdog vouches only for a pipeline whose threads are alive and scheduled.
        if (watchdog.count() > 0 && pipeline.healthy()) service::watchdog();
        continue;
      }
      if (sig == SIGHUP) {
        service::reloading();
        reload(opt, pipeline);
        service::ready("configuration reloaded");
        continue;
      }
      break;
    }
    service::stopping();
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
