// Linked into the test binaries of a DRIFTD_TSAN tree only (with -rdynamic): tells
// ThreadSanitizer how CAF 0.17.6 hands work from one thread to an event-based actor.
//
// libcaf is not instrumented, and the hand-offs go through its lock-free mailboxes,
// work-stealing queues and reference counts, so TSan sees none of them: it would report
// every message an actor reads as a race with the thread that wrote it, an actor's state
// as raced on whenever the actor moves to another worker, and its destruction as racing
// with its last run. This file defines members and functions that libcaf exports; the
// dynamic linker binds the calls to them, libcaf's own calls and vtable slots included, to
// the definitions here, which tell TSan about the hand-off and then run CAF's own code,
// found with dlsym(RTLD_NEXT):
//
//   scheduled_actor::launch (a spawn), ::enqueue (a message)   release on the actor
//   scheduled_actor::activate (its start), ::reactivate (one   acquire on the actor, run,
//     message handled)                                          release on the actor
//   intrusive_ptr_release, _release_weak (a reference dropped)  release and acquire on its
//                                                               control block, then drop
//
// So everything a thread did before it sent to an actor happens before everything that
// actor does after it took the message, one run of an actor happens before its next, and
// the last use of an actor happens before its destruction. That is more order than CAF
// promises (one sender's message also orders the writes of every sender that sent
// earlier), so a run can miss a race between two senders' data; it reports nothing CAF's
// hand-offs rule out. What stays invisible: CAF's own internals (tests/sanitizers/tsan.supp),
// blocking actors (none in the integration tests), and orderings through CAF other than
// these (the middleman's proxies: none in one process).

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "caf/all.hpp"

#if CAF_VERSION != 1706
#error "tsan_caf_handoff.cpp stands in for members of CAF 0.17.6; check them for this version"
#endif

namespace {

/// CAF's own definition of the function `mangled`, looked up after this binary.
template <class Function>
Function original_function(const char* mangled) {
  void* address = dlsym(RTLD_NEXT, mangled);
  if (address == nullptr) {
    std::fprintf(stderr, "tsan_caf_handoff: libcaf_core has no %s\n", mangled);
    std::abort();
  }
  return reinterpret_cast<Function>(address);
}

/// CAF's own definition of the member `mangled` of type `Member` (a pointer to member
/// function), looked up after this binary, where libcaf_core defines it. An Itanium
/// pointer to a non-virtual member function is its address and a zero `this` adjustment.
template <class Member>
Member original(const char* mangled) {
  void* address = dlsym(RTLD_NEXT, mangled);
  if (address == nullptr) {
    std::fprintf(stderr, "tsan_caf_handoff: libcaf_core has no %s\n", mangled);
    std::abort();
  }
  struct {
    void* ptr;
    std::ptrdiff_t adj;
  } raw{address, 0};
  static_assert(sizeof(raw) == sizeof(Member), "not an Itanium pointer to member function");
  Member m;
  std::memcpy(&m, &raw, sizeof m);
  return m;
}

}  // namespace

namespace caf {

bool scheduled_actor::activate(execution_unit* ctx) {
  static const auto caf_activate = original<bool (scheduled_actor::*)(execution_unit*)>(
      "_ZN3caf15scheduled_actor8activateEPNS_14execution_unitE");
  __tsan_acquire(this);
  const bool result = (this->*caf_activate)(ctx);
  __tsan_release(this);
  return result;
}

scheduled_actor::activation_result scheduled_actor::reactivate(mailbox_element& x) {
  static const auto caf_reactivate =
      original<activation_result (scheduled_actor::*)(mailbox_element&)>(
          "_ZN3caf15scheduled_actor10reactivateERNS_15mailbox_elementE");
  __tsan_acquire(this);
  const activation_result result = (this->*caf_reactivate)(x);
  __tsan_release(this);
  return result;
}

void scheduled_actor::enqueue(mailbox_element_ptr ptr, execution_unit* eu) {
  static const auto caf_enqueue =
      original<void (scheduled_actor::*)(mailbox_element_ptr, execution_unit*)>(
          "_ZN3caf15scheduled_actor7enqueueESt10unique_ptrINS_15mailbox_elementENS_6detail8"
          "disposerEEPNS_14execution_unitE");
  __tsan_release(this);
  (this->*caf_enqueue)(std::move(ptr), eu);
}

void scheduled_actor::launch(execution_unit* eu, bool lazy, bool hide) {
  static const auto caf_launch = original<void (scheduled_actor::*)(execution_unit*, bool, bool)>(
      "_ZN3caf15scheduled_actor6launchEPNS_14execution_unitEbb");
  __tsan_release(this);
  (this->*caf_launch)(eu, lazy, hide);
}

void intrusive_ptr_release(actor_control_block* x) {
  using release_fn = void (*)(actor_control_block*);
  static const auto caf_release =
      original_function<release_fn>("_ZN3caf21intrusive_ptr_releaseEPNS_19actor_control_blockE");
  // Whoever drops the last reference destroys the actor: every earlier drop must be ordered
  // before that. Acquiring before the count falls misses only a drop that comes between.
  __tsan_release(x);
  __tsan_acquire(x);
  caf_release(x);
}

void intrusive_ptr_release_weak(actor_control_block* x) {
  using release_fn = void (*)(actor_control_block*);
  static const auto caf_release_weak = original_function<release_fn>(
      "_ZN3caf26intrusive_ptr_release_weakEPNS_19actor_control_blockE");
  __tsan_release(x);
  __tsan_acquire(x);
  caf_release_weak(x);
}

}  // namespace caf
