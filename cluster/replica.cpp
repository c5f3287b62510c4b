#include "cluster/replica.hpp"

#include <chrono>
#include <functional>
#include <set>
#include <unordered_map>
#include <vector>

#include "actors/replication.hpp"
#include "actors/type_ids.hpp"
#include "cluster/messages.hpp"
#include "cluster/type_ids.hpp"
#include "config/logging.hpp"
#include "storage/store.hpp"

namespace driftd::cluster {

/// The store read a room's meta back (from the store's thread).
struct replica_loaded {
  std::string room;
  bool stored = false;
  storage::room_meta meta;
  std::string error;
};

/// A write or read the store finished (from the store's thread).
struct replica_done {
  uint64_t ticket = 0;
  std::string error;
  storage::room_record record;
};

}  // namespace driftd::cluster

// Sent by the replica actor to itself: never leave the node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::cluster::replica_loaded)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::cluster::replica_done)

namespace driftd::cluster {

namespace {

using namespace driftd::actors;

/// What this node knows of one room it holds, and what waits for that to be read.
struct held_room {
  bool known = false;
  bool reading = false;
  bool stored = false;
  storage::room_meta meta;
  /// When the current promise was given (or, for one read back, when it was read).
  caf::actor_clock::time_point promised_at;
  /// The promise was read back from the store: given in an earlier life of this node.
  bool promise_read_back = false;
  std::vector<std::function<void()>> waiting;
};

/// A promise that no write of its epoch followed for this long lapses (its epoch stays): the
/// claim that got it failed without letting it go (its release was lost), and the replica
/// must not refuse the room's real owner for ever.
constexpr auto promise_lapse = std::chrono::seconds{30};

struct replica_state {
  static inline const char* name = "driftd.replica";

  std::string self;
  storage::store* store = nullptr;
  std::unordered_map<std::string, held_room> rooms;
  /// Members up in this node's view: name and incarnation (start time, ns since the epoch).
  std::unordered_map<std::string, uint64_t> up;
  uint64_t next_ticket = 1;
  std::unordered_map<uint64_t, std::function<void(replica_done&)>> pending;
};

using replica_actor = caf::stateful_actor<replica_state>;

spdlog::logger& log() {
  return config::logger("cluster");
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Runs `then` once the meta of `room` is known here (read from the store on first use).
void with_room(replica_actor* self, const std::string& room, std::function<void()> then) {
  auto& st = self->state;
  auto& r = st.rooms[room];
  if (r.known) return then();
  r.waiting.push_back(std::move(then));
  if (r.reading) return;
  r.reading = true;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.store->load(room, [me, room](storage::room_record rec, std::string error) {
    caf::anon_send(me, replica_loaded{room, rec.exists, std::move(rec.meta), std::move(error)});
  });
}

/// Writes `w` and calls `done` (on this actor) once it is durable, or failed.
void write(replica_actor* self, storage::room_write w, std::function<void(replica_done&)> done) {
  auto& st = self->state;
  const uint64_t ticket = st.next_ticket++;
  st.pending.emplace(ticket, std::move(done));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.store->write(std::move(w), [me, ticket](std::string error) {
    caf::anon_send(me, replica_done{ticket, std::move(error), {}});
  });
}

/// The owner the room's promise still binds this replica to: empty once that owner is gone
/// from this node's view, or its promise is void.
std::string binding_owner(replica_actor* self, const held_room& r) {
  const auto& meta = r.meta;
  const auto& owner = meta.promised_owner;
  if (owner.empty()) return {};
  auto live = self->state.up.find(owner);
  if (live == self->state.up.end()) return {};
  if (r.promise_read_back) {
    // Given before this node started. Its owner's room actor ended with the owner's life if
    // that owner is this node, or started after the room was last active.
    if (owner == self->state.self) return {};
    const auto active_ns = static_cast<uint64_t>(meta.last_active_ms) * 1000000u;
    if (live->second > active_ns) return {};
  }
  // A promise never followed by a write (a claim that failed and whose release was lost)
  // lapses: the replica must not refuse the room's real owner for ever.
  if (meta.accepted < meta.promised && self->clock().now() - r.promised_at >= promise_lapse) {
    return {};
  }
  return owner;
}

/// Whether this replica may promise `epoch` of a room to `claimer`: a higher epoch than it
/// promised, and no live owner in the way (a room at a live owner is taken once let go).
bool may_grant(replica_actor* self, const held_room& r, uint64_t epoch,
               const std::string& claimer) {
  if (epoch <= r.meta.promised) return false;
  const auto owner = binding_owner(self, r);
  return owner.empty() || owner == claimer;
}

void on_claim(replica_actor* self, claim_msg& m, caf::typed_response_promise<claim_answer> rp) {
  auto& r = self->state.rooms[m.room];
  claim_answer a;
  a.promised = r.meta.promised;
  // Named only while the promise binds: a refusal for an epoch alone lets the claimer try a
  // higher one.
  a.promised_owner = binding_owner(self, r);
  a.accepted = r.meta.accepted;
  a.last_n = r.meta.last_n;
  a.head = r.meta.head;
  a.high_water = r.meta.high_water;
  a.stored = r.stored;
  a.last_active_ms = r.meta.last_active_ms;
  if (!may_grant(self, r, m.epoch, m.owner)) {
    rp.deliver(std::move(a));
    return;
  }
  // The promise is durable before it is given, and queued behind every write accepted
  // before it: what the grant says it holds is durable when the grant arrives.
  r.meta.promised = m.epoch;
  r.meta.promised_owner = m.owner;
  r.promised_at = self->clock().now();
  r.promise_read_back = false;
  if (r.meta.last_active_ms == 0) r.meta.last_active_ms = wall_ms();
  storage::room_write w;
  w.room = m.room;
  w.has_meta = true;
  w.meta = r.meta;
  a.promised = m.epoch;
  a.promised_owner = m.owner;
  a.granted = true;
  write(self, std::move(w), [rp, a](replica_done& d) mutable {
    if (!d.error.empty()) {
      a.granted = false;  // not promised after all: the claimer counts no grant
    }
    rp.deliver(std::move(a));
  });
}

void on_replicate(replica_actor* self, replicate_msg& m,
                  caf::typed_response_promise<replicate_answer> rp) {
  auto& st = self->state;
  auto& r = st.rooms[m.room];
  replicate_answer a;
  const bool follows =
      m.epoch > r.meta.promised || (m.epoch == r.meta.promised && r.meta.promised_owner == m.owner);
  if (!follows) {
    a.outcome = replicate_answer::refused;
    a.promised = r.meta.promised;
    a.promised_owner = binding_owner(self, r);
    rp.deliver(std::move(a));
    return;
  }
  // A write applies only on top of the write it follows (log matching by epoch and number).
  if (!m.whole && (r.meta.accepted != m.base_epoch || r.meta.last_n != m.base_n)) {
    a.outcome = replicate_answer::behind;
    rp.deliver(std::move(a));
    return;
  }
  if (m.epoch > r.meta.promised) r.promised_at = self->clock().now();
  r.promise_read_back = false;
  r.meta.promised = m.epoch;
  r.meta.promised_owner = m.release ? std::string{} : m.owner;
  r.meta.accepted = m.epoch;
  r.meta.last_n = m.n;
  r.meta.head = m.to;
  r.meta.high_water = m.high_water;
  r.meta.last_active_ms = m.last_active_ms;
  r.stored = true;
  storage::room_write w;
  w.room = m.room;
  w.erase_room = m.whole;
  w.erases.reserve(m.erases.size());
  for (auto& e : m.erases)
    w.erases.emplace_back(std::move(e.key), e.seq);
  w.puts.reserve(m.puts.size());
  for (auto& p : m.puts) {
    w.puts.emplace_back(std::move(p.key), storage::stored_entry{p.seq, std::move(p.value), p.size});
  }
  w.has_meta = true;
  w.meta = r.meta;
  const std::string room = m.room;
  write(self, std::move(w), [self, rp, room](replica_done& d) mutable {
    if (!d.error.empty()) {
      // What the store holds is not what the owner sent: this copy must never win a claim,
      // and gets the whole room with the owner's next write.
      auto& r = self->state.rooms[room];
      r.meta.accepted = 0;
      r.meta.last_n = 0;
      rp.deliver(caf::make_error(caf::sec::runtime_error, d.error));
      return;
    }
    replicate_answer ok;
    ok.outcome = replicate_answer::accepted;
    rp.deliver(std::move(ok));
  });
}

void on_release(replica_actor* self, release_msg& m, caf::typed_response_promise<bool> rp) {
  auto& r = self->state.rooms[m.room];
  if (r.meta.promised != m.epoch || r.meta.promised_owner != m.owner) {
    rp.deliver(true);  // promised to someone else since: nothing to let go
    return;
  }
  r.meta.promised_owner.clear();
  storage::room_write w;
  w.room = m.room;
  w.has_meta = true;
  w.meta = r.meta;
  write(self, std::move(w), [rp](replica_done&) mutable { rp.deliver(true); });
}

void on_fetch(replica_actor* self, const std::string& room,
              caf::typed_response_promise<room_snapshot> rp) {
  auto& st = self->state;
  const uint64_t ticket = st.next_ticket++;
  st.pending.emplace(ticket, [rp, room](replica_done& d) mutable {
    if (!d.error.empty()) {
      rp.deliver(caf::make_error(caf::sec::runtime_error, d.error));
      return;
    }
    room_snapshot snap;
    snap.room = room;
    snap.head = d.record.meta.head;
    snap.high_water = d.record.meta.high_water;
    snap.last_active_ms = d.record.meta.last_active_ms;
    for (auto& [key, entries] : d.record.streams) {
      stream_snapshot ss;
      ss.key = key;
      ss.entries.reserve(entries.size());
      for (auto& e : entries)
        ss.entries.push_back(entry_snapshot{e.seq, std::move(e.value), e.size});
      snap.streams.push_back(std::move(ss));
    }
    rp.deliver(std::move(snap));
  });
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.store->load(room, [me, ticket](storage::room_record rec, std::string error) {
    caf::anon_send(me, replica_done{ticket, std::move(error), std::move(rec)});
  });
}

caf::behavior replica(replica_actor* self, std::string self_name, storage::store* store) {
  self->state.self = std::move(self_name);
  self->state.store = store;
  self->state.up.emplace(self->state.self, 0);
  self->set_exception_handler([=](std::exception_ptr& e) -> caf::error {
    std::string what = "unknown";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    log().critical("the replica of this node failed: {}", what);
    return caf::make_error(caf::sec::runtime_error, "replica failed");
  });
  // An error someone sends here (a rejected answer) must not end the node's replica.
  self->set_error_handler([=](caf::error& err) {
    log().debug("the replica of this node got an error: {}", self->system().render(err));
  });
  return {
      [=](claim_msg& m) -> caf::result<claim_answer> {
        auto rp = self->make_response_promise<claim_answer>();
        with_room(self, m.room, [=]() mutable { on_claim(self, m, rp); });
        return rp;
      },
      [=](replicate_msg& m) -> caf::result<replicate_answer> {
        auto rp = self->make_response_promise<replicate_answer>();
        with_room(self, m.room, [=]() mutable { on_replicate(self, m, rp); });
        return rp;
      },
      [=](release_msg& m) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        with_room(self, m.room, [=]() mutable { on_release(self, m, rp); });
        return rp;
      },
      [=](confirm_msg& m) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        with_room(self, m.room, [=]() mutable {
          const auto& meta = self->state.rooms[m.room].meta;
          // True unless this replica promised a higher epoch, or this one to someone else.
          const bool follows = meta.promised < m.epoch ||
                               (meta.promised == m.epoch && meta.promised_owner == m.owner);
          rp.deliver(follows);
        });
        return rp;
      },
      [=](fetch_msg& m) -> caf::result<room_snapshot> {
        auto rp = self->make_response_promise<room_snapshot>();
        on_fetch(self, m.room, rp);
        return rp;
      },
      [=](replica_loaded& l) {
        auto& r = self->state.rooms[l.room];
        r.reading = false;
        if (!l.error.empty()) {
          log().error("replica of room {}: cannot be read: {}", l.room, l.error);
        }
        r.known = true;
        r.stored = l.stored;
        if (l.stored) r.meta = l.meta;
        r.promised_at = self->clock().now();
        r.promise_read_back = true;
        auto waiting = std::move(r.waiting);
        r.waiting.clear();
        for (auto& w : waiting)
          w();
      },
      [=](replica_done& d) {
        auto& pending = self->state.pending;
        auto it = pending.find(d.ticket);
        if (it == pending.end()) return;
        auto done = std::move(it->second);
        pending.erase(it);
        done(d);
      },
      [=](members_view& view) {
        auto& up = self->state.up;
        up.clear();
        for (const auto& m : view.members) {
          if (m.up) up.emplace(m.addr.name, m.addr.incarnation);
        }
        up.emplace(self->state.self, 0);
      },
  };
}

}  // namespace

caf::actor spawn_replica(caf::actor_system& sys, std::string self_name, storage::store* store) {
  auto r = sys.spawn(replica, std::move(self_name), store);
  r->attach_functor([](const caf::error& reason) {
    log().debug("the replica of this node ended: {}", to_string(reason));
  });
  return r;
}

}  // namespace driftd::cluster
