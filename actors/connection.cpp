#include "actors/connection.hpp"

#include <chrono>

#include "actors/key_set.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "config/logging.hpp"
#include "protocol/close_code.hpp"

namespace driftd::actors {

namespace {

/// How long a new connection waits to be admitted to its room.
constexpr auto join_timeout = std::chrono::seconds{10};

struct connection_state {
  static inline const char* name = "driftd.connection";

  std::string room;
  std::shared_ptr<sink> out;
  caf::actor fanout;
  /// The keys this connection asked to follow.
  key_set keys;
};

using connection_actor = caf::stateful_actor<connection_state>;

spdlog::logger& log() { return config::logger("actors"); }

//   joining --join answered--> routing --closed_atom--> (leave, end)
//      |                          |
//      +--no answer / error-------+--fan-out gone--> (close the socket, end)
caf::behavior connection(connection_actor* self, caf::actor directory, std::string room,
                         std::shared_ptr<sink> out, conn_flags flags) {
  auto& st = self->state;
  st.room = std::move(room);
  st.out = std::move(out);

  // Client messages wait in the mailbox until the fan-out has admitted the connection.
  self->request(directory, join_timeout, join_msg{st.room, self->id(), st.out, flags})
    .await(
      [=](caf::actor fanout) {
        self->state.fanout = fanout;
        watch(self, fanout);
      },
      [=](caf::error& err) {
        log().warn("room {}: connection {} could not join: {}", self->state.room, self->id(),
                   self->system().render(err));
        self->state.out->close(protocol::close_code::try_again_later, "room unavailable");
        self->quit();
      });

  self->set_down_handler([=](caf::down_msg& dm) {
    if (dm.source != self->state.fanout.address()) return;
    self->state.out->close(protocol::close_code::try_again_later, "room unavailable");
    self->quit();
  });

  return {
    [=](protocol::request& req) {
      if (req.kind == protocol::request_kind::get) self->state.keys.insert(req.key);
      self->send(self->state.fanout, client_msg{self->id(), std::move(req)});
    },
    [=](std::vector<protocol::request>& reqs) {
      for (const auto& req : reqs) {
        if (req.kind == protocol::request_kind::get) self->state.keys.insert(req.key);
      }
      self->send(self->state.fanout, client_batch{self->id(), std::move(reqs)});
    },
    [=](closed_atom) {
      self->send(self->state.fanout, leave_msg{self->id()});
      self->quit();
    },
  };
}

}  // namespace

caf::actor spawn_connection(caf::actor_system& sys, caf::actor directory, std::string room,
                            std::shared_ptr<sink> out, conn_flags flags) {
  return sys.spawn(connection, std::move(directory), std::move(room), std::move(out), flags);
}

}  // namespace driftd::actors
