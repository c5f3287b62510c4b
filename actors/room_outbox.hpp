#pragma once
// What a room has to say, held until the changes it reveals are durable.
//
// A room applies every request at once to its streams, so that it can go on numbering
// while its writes are on their way to disk, but everything the request makes the room say
// (broadcasts, answers, inits) waits in the outbox until the write holding the changes made
// so far is acknowledged. Entries leave in the order they were made; pushes to one fan-out
// that leave together travel as one push_batch. Used from the room actor only.

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <utility>
#include <variant>
#include <vector>

#include "caf/all.hpp"

#include "actors/counters.hpp"
#include "actors/messages.hpp"
#include "actors/ownership.hpp"

namespace driftd::actors {

/// A message for a fan-out.
using fanout_message = std::variant<push_out, debug_out, reply_out, subscribed_out, room_moved>;

struct to_fanout {
  caf::actor fanout;
  fanout_message msg;
};

/// The answer to an HTTP call.
struct http_answer {
  caf::response_promise promise;
  http_result result;
};

/// The answer to a request answered with an actor (an adopted room answers with itself).
struct actor_answer {
  caf::response_promise promise;
  caf::actor value;
};

/// The answer to an admin page's room_inspect.
struct summary_answer {
  caf::response_promise promise;
  room_summary value;
};

using room_output = std::variant<to_fanout, http_answer, actor_answer, summary_answer>;

/// What made an entry: a push or a get (answered with an error should their write fail), a
/// request whose answer depends on no stored state (ping, refused input), or the room itself.
enum class origin_kind : uint8_t { room, push, get, stateless };

/// Who asked, for the error that replaces an entry whose write failed.
struct entry_origin {
  origin_kind kind = origin_kind::room;
  caf::actor fanout;
  uint64_t conn = 0;
  protocol::wire_format format = protocol::wire_format::json;
};

/// Entries are numbered as they are made (their ticket). A replicated room lets an entry
/// leave only once a majority of its replicas confirmed, after the entry was made, that they
/// still follow the room's epoch (docs/replication.md): `confirmed` is the highest ticket
/// made before such a confirmation.
class room_outbox {
 public:
  struct entry {
    /// The write that must be acknowledged before this entry leaves (0: none).
    uint64_t gate = 0;
    entry_origin origin;
    std::vector<room_output> outputs;
    uint64_t ticket = 0;
    /// A push the room took (see note_push): when it arrived, and its action.
    std::chrono::steady_clock::time_point push_arrived{};
    protocol::action push_action = protocol::action::relay;
    bool is_push = false;
  };

  /// Where released pushes are counted and timed (null: nowhere). `stats` must outlive the
  /// outbox.
  void count_into(push_stats* stats) { stats_ = stats; }

  /// The open entry is a push the room took: counted, with the time from now until the
  /// entry is released, once it leaves. A push refused, or lost with a failed write, is not.
  void note_push(protocol::action act) {
    if (!open_ || stats_ == nullptr) return;
    auto& e = entries_.back();
    e.push_arrived = std::chrono::steady_clock::now();
    e.push_action = act;
    e.is_push = true;
  }

  /// Starts the entry of one request; what is added until end() belongs to it.
  void begin(entry_origin origin) {
    entries_.push_back(entry{0, std::move(origin), {}, ++last_ticket_});
    open_ = true;
  }

  /// The ticket of the newest entry (0: none made yet).
  uint64_t last_ticket() const { return last_ticket_; }

  /// Whether some entry waits for a confirmation after `confirmed`.
  bool unconfirmed(uint64_t confirmed) const {
    return !entries_.empty() && entries_.back().ticket > confirmed;
  }

  /// Ends the request's entry: it waits for write `gate` (the newest write that holds a
  /// change made so far).
  void end(uint64_t gate) {
    if (open_) entries_.back().gate = gate;
    open_ = false;
  }

  /// Adds an output to the open entry, or to an entry of the room's own that waits for
  /// `gate`.
  void add(room_output out, uint64_t gate) {
    if (!open_ && (entries_.empty() || entries_.back().origin.kind != origin_kind::room ||
                   entries_.back().gate != gate)) {
      entries_.push_back(entry{gate, entry_origin{}, {}, ++last_ticket_});
    }
    entries_.back().outputs.push_back(std::move(out));
  }

  /// Sends every entry whose gate is at most `acked` and whose ticket is at most
  /// `confirmed`, in order, through `self`; pushes to one fan-out that leave together go as
  /// one push_batch.
  template <class Self>
  void release(Self* self, uint64_t acked,
               uint64_t confirmed = std::numeric_limits<uint64_t>::max()) {
    std::chrono::steady_clock::time_point now{};
    while (!entries_.empty() && !(open_ && entries_.size() == 1) &&
           entries_.front().gate <= acked && entries_.front().ticket <= confirmed) {
      auto& e = entries_.front();
      // Counted before its answers leave: whoever reads an answer sees the push counted.
      if (e.is_push) {
        if (now == std::chrono::steady_clock::time_point{}) now = std::chrono::steady_clock::now();
        stats_->record(e.push_action, now - e.push_arrived);
      }
      for (auto& out : e.outputs)
        send(self, out);
      entries_.pop_front();
    }
    send_held(self);
  }

  /// Takes out every entry that waits for write `failed` or a later one, in order.
  std::vector<entry> take_from(uint64_t failed) {
    std::vector<entry> out;
    auto first = entries_.begin();
    while (first != entries_.end() && first->gate < failed)
      ++first;
    for (auto i = first; i != entries_.end(); ++i)
      out.push_back(std::move(*i));
    entries_.erase(first, entries_.end());
    open_ = false;
    return out;
  }

  bool empty() const { return entries_.empty(); }

 private:
  template <class Self>
  void send(Self* self, room_output& out) {
    if (auto* f = std::get_if<to_fanout>(&out)) {
      if (auto* p = std::get_if<push_out>(&f->msg)) return hold(f->fanout, std::move(*p));
      // Whatever else goes to a fan-out comes after the pushes before it.
      send_held_to(self, f->fanout);
      std::visit([&](auto& m) { self->send(f->fanout, std::move(m)); }, f->msg);
    } else if (auto* h = std::get_if<http_answer>(&out)) {
      h->promise.deliver(std::move(h->result));
    } else if (auto* a = std::get_if<actor_answer>(&out)) {
      a->promise.deliver(std::move(a->value));
    } else if (auto* r = std::get_if<summary_answer>(&out)) {
      r->promise.deliver(std::move(r->value));
    }
  }

  void hold(const caf::actor& fanout, push_out m) {
    for (auto& [f, pushes] : held_) {
      if (f == fanout) return pushes.push_back(std::move(m));
    }
    held_.emplace_back(fanout, std::vector<push_out>{});
    held_.back().second.push_back(std::move(m));
  }

  template <class Self>
  static void send_pushes(Self* self, const caf::actor& fanout, std::vector<push_out>& pushes) {
    if (pushes.size() == 1) {
      self->send(fanout, std::move(pushes.front()));
    } else if (!pushes.empty()) {
      self->send(fanout, push_batch{std::move(pushes)});
    }
    pushes.clear();
  }

  template <class Self>
  void send_held_to(Self* self, const caf::actor& fanout) {
    for (auto& [f, pushes] : held_) {
      if (f == fanout) send_pushes(self, f, pushes);
    }
  }

  template <class Self>
  void send_held(Self* self) {
    for (auto& [f, pushes] : held_)
      send_pushes(self, f, pushes);
    held_.clear();
  }

  std::deque<entry> entries_;
  bool open_ = false;
  uint64_t last_ticket_ = 0;
  push_stats* stats_ = nullptr;
  std::vector<std::pair<caf::actor, std::vector<push_out>>> held_;
};

}  // namespace driftd::actors
