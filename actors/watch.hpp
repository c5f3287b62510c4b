#pragma once
// Monitoring a handle that may be null.
//
// A handle that arrived from another node is null when that node vanished before the
// message could be read (no route, so no proxy). CAF 0.17's `monitor` does not check for
// that: it turns the null handle into a bogus pointer and crashes. Every monitor of a
// handle that may have crossed nodes goes through `watch`.

#include "caf/all.hpp"

namespace driftd::actors {

/// Monitors `whom` unless it is null; true when it now is monitored.
template <class Self, class Handle>
bool watch(Self* self, const Handle& whom) {
  if (!whom) return false;
  self->monitor(whom);
  return true;
}

}  // namespace driftd::actors
