// The pipeline: opens the sources, starts capture threads and workers, stops and drains them.
// Owns every stage object; main() only wires flags, config, pipeline and exposition together.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sipex/aggregate.hpp"
#include "sipex/capture.hpp"
#include "sipex/cli.hpp"
#include "sipex/config.hpp"
#include "sipex/metrics.hpp"
#include "sipex/worker.hpp"

namespace sipex {

class Pipeline {
 public:
  Pipeline(const Options& opt, const Config& cfg);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Opens every interface and file. Throws std::runtime_error with a one-line message.
  void open();
  // Starts the worker and capture threads.
  void start();
  // Waits until every file is read, until one of `signals` arrives (they must be blocked in all
  // threads; they are read from a signalfd), or at most `timeout`. Call from one thread only.
  // Returns the signal number, 0 when the capture ended by itself, or -1 when the timeout passed
  // first.
  int wait(const sigset_t& signals, std::chrono::milliseconds timeout);
  // Publishes a new configuration's home networks and peer map to the workers. Counters are kept;
  // limits are not changed (they size tables at start). Returns peer names left without a label
  // value because the peer cap was reached.
  std::vector<std::string> reload(const Config& cfg);
  // Whether every capture and worker thread is alive and the workers have been scheduled since
  // the last call: what the systemd watchdog vouches for.
  bool healthy();
  // Stops capture, hands over the open batches, lets the workers drain their queues, joins all
  // threads. Idempotent.
  void stop();
  // One-line errors met while reading (a file that broke mid-way); empty if none.
  std::vector<std::string> errors() const;

  MetricSources metric_sources() const;

 private:
  struct CaptureThread;

  Options opt_;
  Config cfg_;
  PeerRegistry peers_;
  std::unique_ptr<BatchPool> pool_;
  std::vector<std::unique_ptr<BatchQueue>> queues_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<SourceStats>> sources_;
  std::vector<std::unique_ptr<CaptureThread>> captures_;
  std::vector<std::thread> worker_threads_;
  Worker::GiveBack give_back_ = Worker::GiveBack::per_batch;  // per_dequeue when the reader waits (files)
  std::atomic<bool> stop_capture_{false};
  std::atomic<bool> producers_done_{false};
  std::atomic<int> captures_running_{0};
  int done_fd_;         // eventfd: written once, when captures_running_ reaches 0
  int signal_fd_ = -1;  // signalfd for wait()'s signals, made on its first call
  std::vector<uint64_t> last_beats_;
  bool stopped_ = false;
};

}  // namespace sipex
