// Engine options. Every field has a documented range, checked by Engine::Open (InvalidArgument
// naming the field and its limit). The defaults suit a latency-sensitive service on one host.
#ifndef ATOMIZER_OPTIONS_H_
#define ATOMIZER_OPTIONS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/memory_storage.h"

namespace atomizer {

class LogSink;

struct QueueOptions {
  std::string name = "default";  // ValidateQueueName; unique within EngineOptions::queues
  // Worker threads running this queue's handlers: 1..256.
  int parallelism = 4;
  // Leased jobs buffered in the hot queue ahead of the workers: 1..65,536 (the pump leases
  // when free capacity reaches lease_batch_max or the buffer runs empty).
  int buffer_jobs_max = 64;
  // Jobs per Lease call: 1..kLeaseJobsMax, and <= buffer_jobs_max.
  int lease_batch_max = 32;
  // Lease length: 100 ms..1 day. Running jobs' leases are extended automatically every
  // visibility_timeout / 3, so it can be short without duplicate execution (G-17).
  absl::Duration visibility_timeout = absl::Seconds(30);
  // Fallback poll when no wake-up arrives (local enqueue and the environment's doorbell wake
  // the pump at once): 1 ms..1 hour.
  absl::Duration poll_interval = absl::Seconds(1);
  // Busy-wait before sleeping: 0..100 ms (0: never spin). An idle worker (one per queue at a
  // time) and the idle pump poll for new work for this long, yielding the CPU to any other
  // runnable thread, before they sleep on a futex. Waking a sleeping thread costs tens of
  // microseconds on a virtual machine; a spinning one starts a job within about a microsecond
  // of its delivery. The cost is up to this much CPU time (mostly sched_yield) per idle period
  // of the queue. Set 0 for queues where start latency does not matter.
  absl::Duration idle_spin = absl::Microseconds(500);
};

struct EngineOptions {
  // Storage: an LMDB environment directory (lmdb.path non-empty; created if absent), or, if
  // lmdb.path is empty, an in-memory store (lost at exit) with `memory` options.
  LmdbStorageOptions lmdb;
  InMemoryStorageOptions memory;

  // Queues this process works on (at most 256, names unique). Empty: a producer-only process
  // (Client only, no workers).
  std::vector<QueueOptions> queues;

  // Instance id: "{instance_id_prefix}-{host}-{pid}-{8 hex}", unique per process incarnation.
  // The prefix: 0..32 bytes of [A-Za-z0-9._-].
  std::string instance_id_prefix = "atomizer";

  // Heartbeat every heartbeat_interval (10 ms..1 hour); a server whose heartbeat is older than
  // stale_server_timeout (>= 6 x heartbeat_interval) is recovered by the sweep, which runs every
  // stale_sweep_interval (10 ms..1 hour), independently of the heartbeat. On one host a dead
  // process is found at the next sweep through its lock file, without waiting for the timeout.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration stale_server_timeout = absl::Seconds(10);
  absl::Duration stale_sweep_interval = absl::Milliseconds(250);

  // Default budget of Stop() when called without a deadline: 0..1 hour.
  absl::Duration shutdown_timeout = absl::Seconds(10);

  // Not owned; must outlive the engine. nullptr: SystemClock().
  Clock* clock = nullptr;
  // Not owned; must outlive the engine. nullptr: levelled lines on stderr.
  LogSink* log_sink = nullptr;
};

}  // namespace atomizer

#endif  // ATOMIZER_OPTIONS_H_
