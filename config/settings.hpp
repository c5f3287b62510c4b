#pragma once
// Node settings: built-in defaults, then a JSON config file, then command-line flags.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace driftd::config {

using seconds = std::chrono::seconds;
using milliseconds = std::chrono::milliseconds;

/// Everything a node can be told. The defaults are safe for a single node on loopback.
struct settings {
  // -- client-facing listener --
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  /// Base URL advertised in `socket_url` / `http_url` (e.g. "https://relay.example.com").
  /// Empty: taken from each request's Host header, with ws:// and http://.
  std::string public_url;
  /// Allowed CORS origins; empty means any origin ("*").
  std::vector<std::string> cors_origins;
  /// PEM certificate chain and key; both set: the client port speaks HTTPS and WSS only.
  std::string tls_cert;
  std::string tls_key;

  // -- access --
  /// Keys of which POST /new needs one as `Authorization: Bearer KEY`; empty: anyone may make
  /// rooms. Rooms that exist are reached by their id alone, as in DriftDB.
  std::vector<std::string> api_keys;
  /// The bearer token of /admin and its API; empty: they answer 404.
  std::string admin_token;

  // -- limits --
  std::size_t max_frame_bytes = 1 << 20;          ///< one WebSocket message (close 1009 above)
  std::size_t max_body_bytes = 1 << 20;           ///< one HTTP request body (413 above)
  std::size_t max_key_bytes = 1024;               ///< a stream key
  std::size_t max_depth = 64;                     ///< nesting of one message
  std::size_t max_queue_bytes = 16u << 20;        ///< one connection's unsent output
  std::size_t max_room_bytes = 64u << 20;         ///< retained stream data of one room
  std::size_t max_keys = 100000;                  ///< keys with a retained stream, per room
  std::size_t max_subscriptions = 10000;          ///< keys one connection may follow
  std::size_t max_subscription_bytes = 1u << 20;  ///< their total size
  std::size_t max_connections = 100000;           ///< open client sockets of this node
  /// Partly received WebSocket messages and HTTP bodies of all connections together
  /// (what arrives over it is refused: close 1013, HTTP 503).
  std::size_t max_partial_bytes = 256u << 20;
  std::size_t max_connections_per_ip = 20000;   ///< open sockets of one client address (429 above)
  std::size_t max_new_rooms_per_minute = 1200;  ///< POST /new of one client address (429 above)
  /// Inbound messages of one WebSocket; a second's worth may come at once (1008 above).
  std::size_t max_messages_per_second = 100000;

  // -- timeouts --
  milliseconds handshake_timeout{10000};  ///< from accept to a complete HTTP request
  milliseconds http_timeout{30000};       ///< an idle keep-alive HTTP connection
  milliseconds idle_timeout{60000};       ///< WebSocket silence; pinged at half of it
  milliseconds close_timeout{5000};       ///< waiting for the peer's close frame
  milliseconds message_timeout{30000};    ///< to finish a message or body once begun
  seconds room_ttl{24 * 3600};            ///< a room's data lives this long after its last write

  // -- storage --
  std::string storage = "disk";          ///< disk: rooms survive restarts; memory: they do not
  std::string data_dir = "driftd-data";  ///< the node's database (disk)
  std::string fsync = "always";          ///< always, interval or never
  milliseconds fsync_interval{100};      ///< with fsync interval
  milliseconds unload_after{60000};      ///< an idle room leaves memory (disk)

  // -- threads (0: chosen from the CPUs this process may run on) --
  unsigned io_threads = 0;
  unsigned actor_threads = 0;

  // -- logging --
  std::string log_level = "info";   ///< trace, debug, info, warn, error, critical, off
  std::string log_format = "text";  ///< text, or json: one object per line

  // -- cluster --
  std::string node_name;  ///< empty: "node-<port>"
  std::string cluster_host = "127.0.0.1";
  uint16_t cluster_port = 0;            ///< 0: single node, no cluster listener
  std::vector<std::string> seeds;       ///< "host:port" of cluster members to join through
  std::string cluster_name = "driftd";  ///< nodes of different clusters never merge
  /// Shared by every node: signs room ids and authenticates cluster peers.
  /// Empty: a random one (room ids then last only as long as the process).
  std::string secret;
  milliseconds heartbeat_interval{250};
  milliseconds failure_timeout{2000};  ///< silence after which a member counts as down
  std::size_t replicas = 3;            ///< copies of each room (capped by the seeds)
  std::string cluster_tls_cert;        ///< PEM files; all three set: mutual TLS between nodes
  std::string cluster_tls_key;
  std::string cluster_tls_ca;
};

/// The outcome of reading the command line.
struct load_result {
  std::optional<settings> values;  ///< set when the node should start
  /// --help, --version or --settings-reference text, or what was wrong
  std::string message;
  int exit_code = 0;  ///< when `values` is empty: 0 after those, 2 on error
};

/// Reads defaults, then the JSON file named by `--config FILE` (if any), then the other
/// flags, which override the file. Unknown flags or keys, malformed values and impossible
/// combinations are errors that name the offender.
load_result load(int argc, const char* const* argv);

/// Applies a JSON config document (an object whose keys are the flag names without the
/// leading dashes, e.g. {"port": 8080, "room-ttl": "24h"}) on top of `s`. Returns an error
/// message, or an empty string on success.
std::string apply_json(settings& s, const std::string& json_text);

/// Parses "250ms", "10s", "5m", "24h", "1d" or a plain number of seconds ("30", "0.5").
std::optional<milliseconds> parse_duration(const std::string& text);

/// Parses a byte size: "1048576", "512k", "16m", "1g" (powers of 1024).
std::optional<std::size_t> parse_size(const std::string& text);

/// The --help text.
std::string usage();

/// driftd's version, e.g. "0.1.0" (the project version CMake was given).
const char* version();

/// Every setting as a Markdown document (--settings-reference; docs/settings.md), made from
/// the same table as --help so that the two cannot disagree.
std::string settings_reference();

}  // namespace driftd::config
