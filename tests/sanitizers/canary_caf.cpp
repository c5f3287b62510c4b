// Two checks of tsan_caf_handoff.cpp that scripts/ci-extra.sh runs under ThreadSanitizer
// (through tests/sanitizers/run.sh) before the integration tests:
//
//   canary_caf handoff  data written before each send and read by the actor that handles
//                       it, state an actor keeps across runs on different workers, and its
//                       destruction: CAF orders all of it, so there must be no report;
//   canary_caf race     two actors write one variable, nothing orders them: it must be
//                       reported, or the hand-off hooks would hide races in our actors.

#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "caf/all.hpp"

namespace {

constexpr int messages = 2000;

int unguarded = 0;  // written by both actors of the race check

/// Sums what it is sent; after `messages` messages, gives the sum to `done`.
caf::behavior summer(caf::event_based_actor* self, std::shared_ptr<std::promise<long>> done,
                     bool touch_unguarded) {
  auto total = std::make_shared<long>(0);
  auto seen = std::make_shared<int>(0);
  return {[=](const std::vector<int>& xs) {
    for (const int x : xs)
      *total += x;
    if (touch_unguarded) ++unguarded;
    if (++*seen == messages) {
      done->set_value(*total);
      self->quit();
    }
  }};
}

long run(caf::actor_system& sys, int actors, bool touch_unguarded) {
  std::vector<std::future<long>> results;
  std::vector<caf::actor> summers;
  for (int a = 0; a < actors; ++a) {
    auto done = std::make_shared<std::promise<long>>();
    results.push_back(done->get_future());
    summers.push_back(sys.spawn(summer, done, touch_unguarded));
  }
  for (int i = 0; i < messages; ++i) {
    for (const caf::actor& s : summers)
      caf::anon_send(s, std::vector<int>(16, i));
  }
  long sum = 0;
  for (auto& r : results)
    sum += r.get();
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || (std::strcmp(argv[1], "handoff") != 0 && std::strcmp(argv[1], "race") != 0)) {
    std::fputs("usage: canary_caf handoff|race\n", stderr);
    return 2;
  }
  const bool race = std::strcmp(argv[1], "race") == 0;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 4);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  const long expected = 16L * messages * (messages - 1) / 2 * (race ? 2 : 1);
  const long sum = run(sys, race ? 2 : 1, race);
  if (sum != expected) {
    std::fprintf(stderr, "canary_caf: sum %ld, expected %ld\n", sum, expected);
    return 1;
  }
  return 0;
}
