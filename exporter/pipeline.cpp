#include "sipex/pipeline.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

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

Pipeline::Pipeline(const Options& opt, const Config& cfg)
    : opt_(opt), cfg_(cfg), peers_(cfg_), done_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (done_fd_ < 0) throw std::runtime_error("eventfd failed");
}

Pipeline::~Pipeline() {
  stop();
  close(done_fd_);
  if (signal_fd_ >= 0) close(signal_fd_);
}

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
  give_back_ = live ? Worker::GiveBack::per_batch : Worker::GiveBack::per_dequeue;
}

void Pipeline::start() {
  for (auto& w : workers_) {
    worker_threads_.emplace_back([this, wp = w.get()] { wp->run(producers_done_, give_back_); });
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
      if (captures_running_.fetch_sub(1) == 1) {  // the last one wakes wait()
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = write(done_fd_, &one, sizeof one);
      }
    });
  }
}

// Sleeps in poll() on a signalfd for `signals` and the eventfd the last capture thread writes:
// it wakes at once for either, never on a tick.
int Pipeline::wait(const sigset_t& signals, std::chrono::milliseconds timeout) {
  const int fd = signalfd(signal_fd_, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) throw std::runtime_error("signalfd failed");
  signal_fd_ = fd;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    signalfd_siginfo si;
    if (read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) return static_cast<int>(si.ssi_signo);
    if (captures_running_.load() == 0) return 0;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {done_fd_, POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) throw std::runtime_error("poll failed");
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
  // Every batch is now in a queue or the pool: let the workers drain, then join them. The
  // nullptr wakes a worker sleeping on its empty queue now rather than at its idle timeout.
  producers_done_.store(true, std::memory_order_release);
  for (auto& q : queues_) q->enqueue(nullptr);
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
