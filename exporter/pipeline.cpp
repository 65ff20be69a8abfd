#include "sipex/pipeline.hpp"

#include <time.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>

namespace sipex {

// One capture thread: a live source, or the list of files read one after another.
struct Pipeline::CaptureThread {
  std::vector<std::unique_ptr<PcapSource>> sources;
  std::vector<uint16_t> source_index;  // into Pipeline::sources_
  std::unique_ptr<Dispatcher> dispatcher;
  std::thread thread;
  mutable std::mutex mu;
  std::vector<std::string> errors;
};

Pipeline::Pipeline(const Options& opt, const Config& cfg) : opt_(opt), cfg_(cfg), peers_(cfg_) {}

Pipeline::~Pipeline() { stop(); }

void Pipeline::open() {
  const bool live = !opt_.capture.interfaces.empty();
  // Capture threads: one per interface and thread, or a single one reading the files in order.
  if (live) {
    int group = static_cast<int>(getpid() & 0x7FFF);
    for (const std::string& ifname : opt_.capture.interfaces) {
      const unsigned n = opt_.capture.threads_per_interface;
      const int fanout = n > 1 ? (group++ & 0xFFFF) : -1;
      for (unsigned t = 0; t < n; ++t) {
        auto ct = std::make_unique<CaptureThread>();
        ct->sources.push_back(PcapSource::open_live(ifname, opt_.capture, fanout));
        ct->source_index.push_back(static_cast<uint16_t>(sources_.size()));
        sources_.push_back(std::make_unique<SourceStats>(ifname));
        captures_.push_back(std::move(ct));
      }
    }
  } else {
    auto ct = std::make_unique<CaptureThread>();
    for (const std::string& path : opt_.capture.files) {
      ct->sources.push_back(PcapSource::open_file(path, opt_.capture));
      ct->source_index.push_back(static_cast<uint16_t>(sources_.size()));
      sources_.push_back(std::make_unique<SourceStats>(path));
    }
    captures_.push_back(std::move(ct));
  }
  if (sources_.size() > 65535) throw std::runtime_error("too many capture sources");

  pool_ = std::make_unique<BatchPool>(opt_.pool_batches, opt_.workers + captures_.size());
  std::vector<BatchQueue*> queues;
  std::vector<SourceStats*> stats;
  for (auto& s : sources_) stats.push_back(s.get());
  for (unsigned w = 0; w < opt_.workers; ++w) {
    // Room for every batch of the pool, so a queue is full only if its worker falls far behind.
    queues_.push_back(std::make_unique<BatchQueue>(opt_.pool_batches, captures_.size(), 0));
    queues.push_back(queues_.back().get());
    workers_.push_back(std::make_unique<Worker>(*queues_.back(), *pool_, peers_, cfg_));
  }
  for (auto& ct : captures_) {
    ct->dispatcher = std::make_unique<Dispatcher>(*pool_, queues, stats, !live, stop_capture_);
  }
}

void Pipeline::start() {
  for (auto& w : workers_) {
    worker_threads_.emplace_back([this, wp = w.get()] { wp->run(producers_done_); });
  }
  captures_running_.store(static_cast<int>(captures_.size()));
  for (auto& ct : captures_) {
    CaptureThread* c = ct.get();
    c->thread = std::thread([this, c] {
      for (size_t i = 0; i < c->sources.size() && !stop_capture_.load(); ++i) {
        const uint16_t idx = c->source_index[i];
        std::string err = c->sources[i]->run(*c->dispatcher, idx, *sources_[idx], stop_capture_);
        if (!err.empty()) {
          std::lock_guard<std::mutex> lock(c->mu);
          c->errors.push_back(std::move(err));
        }
      }
      c->dispatcher->flush();
      captures_running_.fetch_sub(1);
    });
  }
}

int Pipeline::wait(const sigset_t& signals, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  const timespec tick{0, 100'000'000};
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig > 0) return sig;
    if (captures_running_.load() == 0) return 0;
    if (std::chrono::steady_clock::now() >= until) return -1;
  }
}

std::vector<std::string> Pipeline::reload(const Config& cfg) { return peers_.apply(cfg); }

bool Pipeline::healthy() {
  bool ok = captures_running_.load() == static_cast<int>(captures_.size());
  last_beats_.resize(workers_.size(), 0);
  for (size_t i = 0; i < workers_.size(); ++i) {
    const uint64_t beat = workers_[i]->heartbeat();
    ok = ok && beat != last_beats_[i];
    last_beats_[i] = beat;
  }
  return ok;
}

void Pipeline::stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_capture_.store(true);
  for (auto& ct : captures_) {
    for (auto& s : ct->sources) s->break_loop();
  }
  for (auto& ct : captures_) {
    if (ct->thread.joinable()) ct->thread.join();
  }
  // Every batch is now in a queue or the pool: let the workers drain, then join them.
  producers_done_.store(true, std::memory_order_release);
  for (auto& t : worker_threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<std::string> Pipeline::errors() const {
  std::vector<std::string> out;
  for (const auto& ct : captures_) {
    std::lock_guard<std::mutex> lock(ct->mu);
    out.insert(out.end(), ct->errors.begin(), ct->errors.end());
  }
  return out;
}

MetricSources Pipeline::metric_sources() const {
  MetricSources m;
  for (const auto& w : workers_) m.workers.push_back(w.get());
  for (const auto& s : sources_) m.sources.push_back(s.get());
  m.peers = &peers_;
  m.kernel = active_kernel().name;
  return m;
}

}  // namespace sipex
