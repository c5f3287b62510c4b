#pragma once
// The JSON of the admin page's API (GET /admin/api/...), and the small HTTP client a node
// uses to gather the other members' figures for /admin/api/cluster.

#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
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

/// GET `target` from the node at `host_port` ("host:port" or "[v6]:port") over HTTP/1.1, with
/// `authorization` as the Authorization header. `done` gets the status and body, or status 0
/// and the reason when there was no answer within `timeout`. Runs on `ex` (a single-threaded
/// executor: `done` runs there too); never blocks.
void fetch_from_peer(boost::asio::any_io_executor ex, const std::string& host_port,
                     const std::string& target, const std::string& authorization,
                     std::chrono::milliseconds timeout,
                     std::function<void(unsigned status, std::string body)> done);

}  // namespace driftd::net
