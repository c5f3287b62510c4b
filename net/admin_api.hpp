#pragma once
// The JSON of the admin page's API (GET /admin/api/...). A cluster's members hand each other
// their node_figures over the cluster link for /admin/api/cluster (see cluster/router.hpp).

#include <string>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"

namespace driftd::net {

struct context;

/// This node's figures (GET /admin/api/node): connections by format, rooms, the push and
/// delivery counters (the page turns them into rates), memory, uptime. Any thread.
nlohmann::json node_figures(const context& ctx, const actors::directory_stats& dir);

/// A room as the admin page shows it (GET /admin/api/room/{id}); values are JSON.
nlohmann::json room_figures(const std::string& room, const nlohmann::json& placement,
                            const actors::room_summary& summary);

}  // namespace driftd::net
