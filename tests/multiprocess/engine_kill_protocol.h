// What engine_worker and engine_kill_test agree on beyond the command line (see the usage at the
// top of engine_worker.cc): the queue, the job type, the engine options every process uses, and
// the line formats of the files the children write.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_TESTS_MULTIPROCESS_ENGINE_KILL_PROTOCOL_H_
#define ATOMIZER_TESTS_MULTIPROCESS_ENGINE_KILL_PROTOCOL_H_

#include "absl/time/time.h"

namespace atomizer::testing {

inline constexpr char kKillQueue[] = "kill";
inline constexpr char kKillJobType[] = "kill.job";

// The sweep interval of every process: the bound for rescuing a dead worker's jobs.
inline constexpr absl::Duration kKillSweepInterval = absl::Milliseconds(250);
inline constexpr absl::Duration kKillHeartbeatInterval = absl::Seconds(1);
// Far longer than any run may last, so a recovery through the stale-heartbeat path is
// impossible: only lock-file death detection (one sweep after the death) can recover the
// killed worker. Its log reason is "its process died"; the stale path says "its heartbeat is
// stale", and the test requires that line never to appear.
inline constexpr absl::Duration kKillStaleServerTimeout = absl::Hours(24);
// The longest lease the engine accepts (QueueOptions: 100 ms..1 day). For the same reason as
// above: no lease of the killed worker expires during a run, so only the recovery can hand its
// jobs to a survivor.
inline constexpr absl::Duration kKillVisibilityTimeout = absl::Hours(24);
// Completed records are kept (and the sweep's Prune finds nothing to delete) for the whole run,
// so the test can read every job's final record.
inline constexpr absl::Duration kKillCompletedRetention = absl::Hours(24);

inline constexpr int kKillWorkerParallelism = 4;
inline constexpr int kKillProducerBatchJobs = 1000;  // <= Client::EnqueueBatch's 10,000

// Execution log (one per worker; the handler appends one line per run with one write(2)):
//   "<job id> <attempt> <unix micros at the start of the run>\n"
// Engine log (one per process; its LogSink appends one line per message with one write(2)):
//   "<unix micros> <LEVEL> <message>\n"
// Recovery messages the test looks for in engine logs (engine/heartbeat/heartbeat_service.cc):
//   "sweep: recovered <instance> (<reason>): <n> jobs released, <m> dead-lettered"
inline constexpr char kRecoveredPrefix[] = "sweep: recovered ";
inline constexpr char kReasonProcessDied[] = "(its process died)";
inline constexpr char kReasonHeartbeatStale[] = "(its heartbeat is stale)";
inline constexpr char kLeaseLostText[] = "lease lost";

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_MULTIPROCESS_ENGINE_KILL_PROTOCOL_H_
