#include "net/admin_api.hpp"

#include <chrono>

#include "config/settings.hpp"
#include "net/context.hpp"
#include "net/metrics.hpp"
#include "storage/store.hpp"

namespace driftd::net {

using json = nlohmann::json;

json node_figures(const context& ctx, const actors::directory_stats& dir) {
  const auto& s = ctx.stats;
  const auto* a = ctx.actor_stats;
  const auto relaxed = std::memory_order_relaxed;
  uint64_t pushes = 0;
  if (a) {
    for (const auto n : a->pushes.read().by_action)
      pushes += n;
  }
  json doc{
      {"node", ctx.node_name},
      {"version", config::version()},
      {"uptime_seconds", std::chrono::duration<double>(ctx.uptime()).count()},
      {"connections",
       {{"json", s.websockets_by_format[0].load(relaxed)},
        {"cbor", s.websockets_by_format[1].load(relaxed)}}},
      {"sockets", s.sockets_open.load(relaxed)},
      {"rooms", dir.rooms},
      {"pushes", pushes},
      {"deliveries", a ? a->deliveries.load(relaxed) : 0},
      {"slow_consumers_closed", s.slow_consumers_closed.load(relaxed)},
      {"memory_bytes", resident_memory_bytes()},
  };
  if (ctx.store != nullptr) {
    const auto st = ctx.store->stats();
    doc["storage"] = json{{"disk_bytes", st.bytes_on_disk},
                          {"failure", st.failure.empty() ? json(nullptr) : json(st.failure)}};
  } else {
    doc["storage"] = "memory";
  }
  return doc;
}

json room_figures(const std::string& room, const json& placement,
                  const actors::room_summary& summary) {
  json keys = json::array();
  for (const auto& k : summary.keys) {
    json latest = json::array();
    for (const auto& e : k.latest) {
      // The room wrote these as JSON; should one not read back, it is shown as text.
      auto value = json::parse(e.value, nullptr, false);
      latest.push_back({{"seq", e.seq}, {"value", value.is_discarded() ? json(e.value) : value}});
    }
    keys.push_back({{"key", k.key}, {"size", k.size}, {"bytes", k.bytes}, {"latest", latest}});
  }
  return json{{"room", room},
              {"owner", placement.value("owner", "")},
              {"owner_http", placement.value("http", "")},
              {"seq", summary.head},
              {"connections", summary.connections},
              {"keys_total", summary.keys_total},
              {"bytes", summary.bytes},
              {"keys", keys}};
}

}  // namespace driftd::net
