#include "net/metrics.hpp"

#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "net/context.hpp"
#include "storage/store.hpp"

namespace driftd::net {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Registry;

double as_double(uint64_t v) {
  return static_cast<double>(v);
}

/// A counter family with one unlabelled series of `value`.
void counter(Registry& r, const std::string& name, const std::string& help, uint64_t value) {
  BuildCounter().Name(name).Help(help).Register(r).Add({}).Increment(as_double(value));
}

void gauge(Registry& r, const std::string& name, const std::string& help, double value) {
  BuildGauge().Name(name).Help(help).Register(r).Add({}).Set(value);
}

constexpr const char* action_names[] = {"relay", "append", "replace", "compact"};

}  // namespace

std::map<std::string, uint64_t> members_by_state(const std::string& cluster_json) {
  std::map<std::string, uint64_t> out{{"up", 0}, {"leaving", 0}, {"down", 0}};
  const auto doc = nlohmann::json::parse(cluster_json, nullptr, false);
  if (doc.is_discarded() || !doc.contains("members") || !doc["members"].is_array()) return out;
  for (const auto& m : doc["members"]) {
    if (m.contains("state") && m["state"].is_string()) ++out[m["state"].get<std::string>()];
  }
  return out;
}

uint64_t resident_memory_bytes() {
  // statm: total and resident size, in pages.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long total = 0;
  unsigned long long resident = 0;
  const int read = std::fscanf(f, "%llu %llu", &total, &resident);
  std::fclose(f);
  if (read != 2) return 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

std::string render_metrics(const context& ctx, const scrape_input& in) {
  // A registry per scrape: every value is read from the node's counters now, so nothing
  // needs to be kept between scrapes.
  Registry r;
  const auto& s = ctx.stats;
  const auto* a = ctx.actor_stats;
  const auto relaxed = std::memory_order_relaxed;

  BuildGauge()
      .Name("driftd_build_info")
      .Help("Always 1; the version of driftd this node runs")
      .Register(r)
      .Add({{"version", config::version()}, {"node", ctx.node_name}})
      .Set(1);
  gauge(r, "driftd_uptime_seconds", "Seconds since this node started",
        std::chrono::duration<double>(ctx.uptime()).count());
  gauge(r, "driftd_resident_memory_bytes", "Resident memory of this node's process",
        as_double(resident_memory_bytes()));

  // -- connections --
  auto& conns = BuildGauge()
                    .Name("driftd_connections")
                    .Help("Open WebSocket connections of this node, by wire format")
                    .Register(r);
  conns.Add({{"format", "json"}}).Set(as_double(s.websockets_by_format[0].load(relaxed)));
  conns.Add({{"format", "cbor"}}).Set(as_double(s.websockets_by_format[1].load(relaxed)));
  gauge(r, "driftd_sockets", "Open client sockets of this node (HTTP and WebSocket)",
        as_double(s.sockets_open.load(relaxed)));
  counter(r, "driftd_connections_opened_total", "WebSocket connections opened on this node",
          s.websockets_total.load(relaxed));
  counter(r, "driftd_connections_refused_total",
          "Sockets refused before their request was read (--max-connections, "
          "--max-connections-per-ip, or stopping)",
          s.connections_refused.load(relaxed));
  counter(r, "driftd_slow_consumers_closed_total",
          "WebSockets closed because their unsent output passed --max-queue-bytes",
          s.slow_consumers_closed.load(relaxed));
  counter(r, "driftd_idle_closed_total", "WebSockets closed for not answering pings",
          s.idle_closed.load(relaxed));
  auto& rejected = BuildCounter()
                       .Name("driftd_rejected_messages_total")
                       .Help(
                           "Client messages refused, by reason: invalid (answered with an "
                           "error), too_big (close 1009), protocol (broken WebSocket framing), "
                           "rate_limit (close 1008), partial_input (--max-partial-bytes), "
                           "message_timeout (--message-timeout)")
                       .Register(r);
  rejected.Add({{"reason", "invalid"}}).Increment(as_double(s.rejected_messages.load(relaxed)));
  rejected.Add({{"reason", "too_big"}}).Increment(as_double(s.oversize_closed.load(relaxed)));
  rejected.Add({{"reason", "protocol"}}).Increment(as_double(s.protocol_errors.load(relaxed)));
  rejected.Add({{"reason", "rate_limit"}}).Increment(as_double(s.rate_limited.load(relaxed)));
  rejected.Add({{"reason", "partial_input"}}).Increment(as_double(s.partial_refused.load(relaxed)));
  rejected.Add({{"reason", "message_timeout"}})
      .Increment(as_double(s.message_timeouts.load(relaxed)));
  counter(r, "driftd_rooms_refused_total", "POST /new refused for --max-new-rooms-per-minute",
          s.rooms_refused.load(relaxed));
  gauge(r, "driftd_partial_input_bytes",
        "Bytes of partly received messages and bodies held now, all connections",
        as_double(s.partial_bytes.load(relaxed)));
  counter(r, "driftd_socket_writes_total", "Socket writes of WebSocket sessions",
          s.socket_writes.load(relaxed));
  counter(r, "driftd_messages_written_total",
          "Messages of every kind those writes carried (pushes, inits, answers)",
          s.messages_written.load(relaxed));

  // -- HTTP --
  auto& http = BuildCounter()
                   .Name("driftd_http_requests_total")
                   .Help(
                       "HTTP requests answered, by route and status (WebSocket upgrades as "
                       "101)")
                   .Register(r);
  for (std::size_t k = 0; k < route_kinds; ++k) {
    const auto kind = static_cast<route_kind>(k);
    for (std::size_t slot = 0; slot < http_counts::slots; ++slot) {
      const uint64_t n = s.http_responses.get(kind, slot);
      if (n == 0) continue;  // a series per route and status that happened, not every pair
      const std::string status = slot < http_counts::statuses.size()
                                     ? std::to_string(http_counts::statuses[slot])
                                     : std::string{"other"};
      http.Add({{"route", route_name(kind)}, {"status", status}}).Increment(as_double(n));
    }
  }

  // -- rooms and pushes --
  gauge(r, "driftd_rooms", "Rooms loaded on this node", as_double(in.rooms));
  gauge(r, "driftd_room_fanouts", "Rooms this node's connections are attached to",
        as_double(in.fanouts));
  const auto pushes = a ? a->pushes.read() : actors::push_stats::snapshot{};
  auto& by_action = BuildCounter()
                        .Name("driftd_pushes_total")
                        .Help(
                            "Pushes sequenced by the rooms on this node, by action (compact "
                            "takes no seq but is counted), once they left the room: durable "
                            "and broadcast")
                        .Register(r);
  for (std::size_t i = 0; i < actors::push_stats::actions; ++i) {
    by_action.Add({{"action", action_names[i]}}).Increment(as_double(pushes.by_action[i]));
  }
  {
    std::vector<double> bounds;
    std::vector<double> increments;
    for (const auto ns : actors::push_stats::bounds_ns)
      bounds.push_back(as_double(ns) / 1e9);
    for (const auto n : pushes.bucket)
      increments.push_back(as_double(n));
    BuildHistogram()
        .Name("driftd_push_latency_seconds")
        .Help(
            "From a push's arrival at its room to its broadcast (after storage acknowledged "
            "it); one sample per push counted in driftd_pushes_total")
        .Register(r)
        .Add({}, bounds)
        .ObserveMultiple(increments, as_double(pushes.sum_ns) / 1e9);
  }
  counter(r, "driftd_broadcasts_received_total",
          "Broadcasts that reached this node's fan-outs (one per push per node with "
          "subscribers)",
          a ? a->broadcasts_in.load(relaxed) : 0);
  counter(r, "driftd_deliveries_total",
          "Server-to-client push messages this node handed to its WebSocket connections",
          a ? a->deliveries.load(relaxed) : 0);
  counter(r, "driftd_room_moves_total", "Rooms this node handed over to another node",
          a ? a->rooms_moved.load(relaxed) : 0);

  // -- cluster --
  auto& members = BuildGauge()
                      .Name("driftd_cluster_members")
                      .Help("Members of the cluster as this node sees them, by state")
                      .Register(r);
  for (const auto& [state, n] : in.members)
    members.Add({{"state", state}}).Set(as_double(n));

  // -- storage --
  if (ctx.store != nullptr) {
    const auto st = ctx.store->stats();
    counter(r, "driftd_storage_writes_total", "Room writes the store acknowledged", st.writes);
    counter(r, "driftd_storage_write_errors_total", "Room writes that failed", st.write_errors);
    counter(r, "driftd_storage_commits_total", "Group commits (one storage write each)",
            st.commits);
    counter(r, "driftd_storage_fsyncs_total", "Syncs to disk", st.fsyncs);
    gauge(r, "driftd_storage_largest_commit_writes", "Most room writes one group commit carried",
          as_double(st.largest_commit));
    counter(r, "driftd_storage_rooms_loaded_total", "Rooms read back from disk", st.loads);
    counter(r, "driftd_storage_rooms_unloaded_total", "Idle rooms that left memory",
            a ? a->rooms_unloaded.load(relaxed) : 0);
    counter(r, "driftd_storage_rooms_expired_total", "Rooms deleted by expiry", st.expired);
    gauge(r, "driftd_storage_disk_bytes", "Live data files and logs of the node's database",
          as_double(st.bytes_on_disk));
    gauge(r, "driftd_storage_failing", "1 while writes fail (see /healthz), else 0",
          st.failure.empty() ? 0 : 1);
  }

  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, r.Collect());
  return out.str();
}

}  // namespace driftd::net
