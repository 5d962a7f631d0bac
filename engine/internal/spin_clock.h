// SpinClockNanos: the real monotonic time, for bounding busy-waits only.
//
// Spinning trades CPU time for wake-up latency, so its bound is real time by nature; it never
// goes through atomizer::Clock (a FakeClock that tests hold still would spin forever). Nothing
// observable may depend on it: a spin that ends early or late only changes how the waiter
// sleeps. Defined in engine/clock.cc, the one file that reads the real clock.
//
// Thread-safe: may be called from any thread.
#ifndef ATOMIZER_ENGINE_INTERNAL_SPIN_CLOCK_H_
#define ATOMIZER_ENGINE_INTERNAL_SPIN_CLOCK_H_

#include <cstdint>

namespace atomizer::engine_internal {

int64_t SpinClockNanos();

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_SPIN_CLOCK_H_
