#include "config/settings.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace driftd::config {
namespace {

// Objects keep their document order so that the first bad key in the file is the one reported.
using json = nlohmann::ordered_json;

// Longer than any sane timeout or room lifetime, and far from overflowing the nanosecond
// clocks that Asio and CAF convert these values to.
constexpr milliseconds max_duration{3650LL * 24 * 3600 * 1000};
constexpr unsigned max_threads = 1024;
constexpr std::size_t max_name_length = 64;

// -- small text helpers --

/// `text` in double quotes, with control and non-ASCII bytes escaped, so that an error
/// message stays one readable line whatever the user typed.
std::string quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// Makes a third-party message (nlohmann, strerror) fit on one line.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  return out;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

/// Parses a run of decimal digits, nothing else; nullopt on overflow.
std::optional<uint64_t> parse_digits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// Milliseconds in one `unit` of a duration; no unit means seconds.
std::optional<int64_t> duration_unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit.empty() || unit == "s") return 1000;
  if (unit == "m") return int64_t{60} * 1000;
  if (unit == "h") return int64_t{3600} * 1000;
  if (unit == "d") return int64_t{86400} * 1000;
  return std::nullopt;
}

/// Formats a size the way parse_size reads it back, in the largest exact unit.
std::string format_size(std::size_t bytes) {
  if (bytes != 0 && bytes % (std::size_t{1} << 30) == 0) return std::to_string(bytes >> 30) + "g";
  if (bytes != 0 && bytes % (std::size_t{1} << 20) == 0) return std::to_string(bytes >> 20) + "m";
  if (bytes != 0 && bytes % (std::size_t{1} << 10) == 0) return std::to_string(bytes >> 10) + "k";
  return std::to_string(bytes);
}

/// Formats a duration the way parse_duration reads it back, in the largest exact unit.
std::string format_duration(milliseconds d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

// -- values as they arrive --
//
// A command-line value is always a string; a config file value may also be a number or an
// array. Each setter takes the JSON form (flags arrive as JSON strings) and returns an empty
// string, or the reason the value was refused. The reason shows the value; the caller puts
// the flag or key in front of it.

/// How a value is shown in a reason: strings quoted, anything else as JSON.
std::string shown(const json& value) {
  return value.is_string() ? quote(value.get_ref<const std::string&>()) : value.dump();
}

/// The text a scalar value stands for; numbers by their JSON spelling. Empty on a wrong type,
/// with `error` set.
std::optional<std::string> scalar_text(const json& value, bool numbers_allowed,
                                       std::string& error) {
  if (value.is_string()) return value.get<std::string>();
  if (numbers_allowed && value.is_number()) return value.dump();
  error = numbers_allowed ? "must be a number or a string, not " + shown(value)
                          : "must be a string, not " + shown(value);
  return std::nullopt;
}

/// An unsigned integer from a JSON integer or a string of digits.
std::string read_count(const json& value, uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return {};
  }
  std::string error;
  const auto text = scalar_text(value, true, error);
  if (!text) return error;
  const auto parsed = parse_digits(*text);
  if (!parsed) return shown(value) + " is not a whole number";
  out = *parsed;
  return {};
}

/// Items of a list: a JSON array of strings, or one string of comma-separated items (an
/// empty string is the empty list). Items are trimmed; an empty item is an error.
std::string read_list(const json& value, std::vector<std::string>& out) {
  out.clear();
  if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string()) return "list items must be strings, not " + shown(item);
      const auto text = trim(item.get_ref<const std::string&>());
      if (text.empty()) return "list " + shown(value) + " has an empty item";
      out.emplace_back(text);
    }
    return {};
  }
  if (!value.is_string()) return "must be a list or a comma-separated string, not " + shown(value);
  const std::string_view text = value.get_ref<const std::string&>();
  if (trim(text).empty()) return {};
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const auto item =
        trim(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
    if (item.empty()) return "list " + shown(value) + " has an empty item";
    out.emplace_back(item);
    if (comma == std::string_view::npos) return {};
    start = comma + 1;
  }
}

// -- per-setting checks, shared by the setters below --

using text_check = std::string (*)(std::string& text);

std::string check_any(std::string&) {
  return {};
}

std::string check_host(std::string& text) {
  if (text.empty()) return "must not be empty";
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= ' ') return quote(text) + " is not a host name or address";
  }
  return {};
}

std::string check_public_url(std::string& text) {
  if (text.empty()) return {};
  const bool http = text.rfind("http://", 0) == 0;
  const bool https = text.rfind("https://", 0) == 0;
  if (!http && !https) return quote(text) + " must start with http:// or https://";
  const std::size_t host_start = http ? 7 : 8;
  if (text.size() <= host_start || text[host_start] == '/') return quote(text) + " has no host";
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= ' ') return quote(text) + " is not a URL";
  }
  // The routes are appended to it, so "https://relay.example.com/" means the same as without.
  while (text.back() == '/') {
    text.pop_back();
  }
  return {};
}

std::string check_log_level(std::string& text) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (text == level) return {};
  }
  return quote(text) + " is not one of trace, debug, info, warn, error, critical, off";
}

std::string check_log_format(std::string& text) {
  if (text == "text" || text == "json") return {};
  return quote(text) + " is not one of text, json";
}

/// A key or token is sent in an Authorization header: printable ASCII without spaces.
std::string check_bearer(const std::string& text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || byte >= 0x7f) {
      return "may hold only printable ASCII characters without spaces";
    }
  }
  return {};
}

std::string check_api_key(const std::string& item) {
  return check_bearer(item);
}

std::string check_admin_token(std::string& text) {
  return check_bearer(text);
}

std::string check_storage(std::string& text) {
  if (text == "disk" || text == "memory") return {};
  return quote(text) + " is not one of disk, memory";
}

std::string check_fsync(std::string& text) {
  for (const char* policy : {"always", "interval", "never"}) {
    if (text == policy) return {};
  }
  return quote(text) + " is not one of always, interval, never";
}

std::string check_data_dir(std::string& text) {
  if (text.empty()) return "must not be empty";
  return {};
}

/// Names show up in logs, in /cluster answers and in the cluster handshake: keep them plain.
std::string check_name(const std::string& text) {
  if (text.size() > max_name_length) {
    return quote(text) + " is longer than " + std::to_string(max_name_length) + " characters";
  }
  for (const char c : text) {
    const bool plain = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '-' || c == '_' || c == '.';
    if (!plain) return quote(text) + " may hold only letters, digits, '-', '_' and '.'";
  }
  return {};
}

std::string check_node_name(std::string& text) {
  return check_name(text);
}

std::string check_cluster_name(std::string& text) {
  if (text.empty()) return "must not be empty";
  return check_name(text);
}

using item_check = std::string (*)(const std::string& item);

// Emptiness, the one thing wrong with an origin we can tell, is read_list's job.
std::string check_origin(const std::string&) {
  return {};
}

std::string check_seed(const std::string& item) {
  std::string_view host;
  std::string_view port;
  if (item.front() == '[') {  // [v6-address]:port
    const auto close = item.find(']');
    if (close == std::string::npos || close + 1 >= item.size() || item[close + 1] != ':') {
      return "seed " + quote(item) + " is not host:port";
    }
    host = std::string_view(item).substr(1, close - 1);
    port = std::string_view(item).substr(close + 2);
  } else {
    const auto colon = item.rfind(':');
    if (colon == std::string::npos) return "seed " + quote(item) + " is not host:port";
    host = std::string_view(item).substr(0, colon);
    port = std::string_view(item).substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "seed " + quote(item) + " is ambiguous: write an IPv6 address as [addr]:port";
    }
  }
  if (host.empty()) return "seed " + quote(item) + " has no host";
  const auto number = parse_digits(port);
  if (!number || *number < 1 || *number > 65535) {
    return "seed " + quote(item) + " has no valid port (1..65535)";
  }
  return {};
}

// -- setters, one per kind of setting, parameterised by the member they write --

template <auto Member, text_check Check>
std::string set_text(settings& s, const json& value) {
  std::string error;
  auto text = scalar_text(value, false, error);
  if (!text) return error;
  if (auto problem = Check(*text); !problem.empty()) return problem;
  s.*Member = std::move(*text);
  return {};
}

template <auto Member, item_check Check>
std::string set_list(settings& s, const json& value) {
  std::vector<std::string> items;
  if (auto problem = read_list(value, items); !problem.empty()) return problem;
  for (const auto& item : items) {
    if (auto problem = Check(item); !problem.empty()) return problem;
  }
  s.*Member = std::move(items);
  return {};
}

/// A TCP port; 0 is allowed ("any free port" for the listener, "no cluster" for the cluster).
template <auto Member>
std::string set_port(settings& s, const json& value) {
  uint64_t number = 0;
  if (auto problem = read_count(value, number); !problem.empty()) return problem;
  if (number > 65535) return shown(value) + " is not a port (0..65535)";
  s.*Member = static_cast<uint16_t>(number);
  return {};
}

template <auto Member, uint64_t Min, uint64_t Max>
std::string set_count(settings& s, const json& value) {
  uint64_t number = 0;
  if (auto problem = read_count(value, number); !problem.empty()) return problem;
  if (number < Min || number > Max) {
    return shown(value) + " is out of range (" + std::to_string(Min) + ".." + std::to_string(Max) +
           ")";
  }
  s.*Member = static_cast<std::remove_reference_t<decltype(s.*Member)>>(number);
  return {};
}

template <auto Member, std::size_t Min>
std::string set_size(settings& s, const json& value) {
  std::optional<std::size_t> bytes;
  if (value.is_number_unsigned()) {
    bytes = value.get<std::size_t>();
  } else {
    std::string error;
    const auto text = scalar_text(value, true, error);
    if (!text) return error;
    bytes = parse_size(*text);
    if (!bytes) return shown(value) + " is not a size (like 1048576, 512k, 16m, 1g)";
  }
  if (*bytes < Min) return shown(value) + " is below the minimum of " + format_size(Min);
  s.*Member = *bytes;
  return {};
}

/// Reads a duration of at least `min`; numbers in a config file count seconds.
std::string read_duration(const json& value, milliseconds min, milliseconds& out) {
  std::string error;
  const auto text = scalar_text(value, true, error);
  if (!text) return error;
  const auto parsed = parse_duration(*text);
  if (!parsed) return shown(value) + " is not a duration (like 250ms, 10s, 5m, 24h, 1d, 0.5)";
  if (*parsed < min) {
    return min == milliseconds{1}
               ? shown(value) + " must be more than 0"
               : shown(value) + " is below the minimum of " + format_duration(min);
  }
  if (*parsed > max_duration) {
    return shown(value) + " is above the maximum of " + format_duration(max_duration);
  }
  out = *parsed;
  return {};
}

template <auto Member>
std::string set_duration(settings& s, const json& value) {
  milliseconds d{};
  if (auto problem = read_duration(value, milliseconds{1}, d); !problem.empty()) return problem;
  s.*Member = d;
  return {};
}

template <auto Member>
std::string set_seconds(settings& s, const json& value) {
  milliseconds d{};
  if (auto problem = read_duration(value, seconds{1}, d); !problem.empty()) return problem;
  if (d.count() % 1000 != 0) return shown(value) + " is not a whole number of seconds";
  s.*Member = std::chrono::duration_cast<seconds>(d);
  return {};
}

// -- how defaults are shown in --help --

template <auto Member>
std::string show_text(const settings& s) {
  return s.*Member;
}
template <auto Member>
std::string show_list(const settings& s) {
  return join(s.*Member);
}
template <auto Member>
std::string show_number(const settings& s) {
  return std::to_string(s.*Member);
}
template <auto Member>
std::string show_size(const settings& s) {
  return format_size(s.*Member);
}
template <auto Member>
std::string show_duration(const settings& s) {
  return format_duration(std::chrono::duration_cast<milliseconds>(s.*Member));
}

// -- the table of settings: flags, config keys and --help all come from here --

struct option {
  std::string_view name;      ///< flag without "--", and config key
  std::string_view group;     ///< heading in --help
  std::string_view metavar;   ///< placeholder for the value in --help
  std::string_view help;      ///< one line
  std::string_view if_empty;  ///< shown as the default when the default is empty
  std::string (*set)(settings&, const json&);
  std::string (*show)(const settings&);
};

using S = settings;

// clang-format off
constexpr option options[] = {
  {"host", "listener", "HOST", "address to listen on for clients", "",
   set_text<&S::host, check_host>, show_text<&S::host>},
  {"port", "listener", "PORT", "port to listen on for clients; 0 picks a free one", "",
   set_port<&S::port>, show_number<&S::port>},
  {"public-url", "listener", "URL", "base URL given to clients; its scheme picks ws or wss",
   "the request's Host header", set_text<&S::public_url, check_public_url>,
   show_text<&S::public_url>},
  {"cors-origins", "listener", "LIST", "comma-separated origins allowed by CORS", "any origin",
   set_list<&S::cors_origins, check_origin>, show_list<&S::cors_origins>},
  {"tls-cert", "listener", "FILE",
   "PEM certificate chain; with --tls-key the port serves HTTPS and WSS (SIGHUP rereads both)",
   "none: plain HTTP", set_text<&S::tls_cert, check_any>, show_text<&S::tls_cert>},
  {"tls-key", "listener", "FILE", "PEM private key of --tls-cert (not encrypted)", "none",
   set_text<&S::tls_key, check_any>, show_text<&S::tls_key>},

  {"api-key", "access", "LIST",
   "keys POST /new accepts as Authorization: Bearer KEY (one is needed when set); repeatable",
   "none: anyone may make rooms", set_list<&S::api_keys, check_api_key>,
   show_list<&S::api_keys>},
  {"admin-token", "access", "TOKEN",
   "bearer token of /admin and /admin/api; same on every node of a cluster",
   "none: /admin answers 404", set_text<&S::admin_token, check_admin_token>,
   show_text<&S::admin_token>},

  {"max-frame-bytes", "limits", "SIZE", "largest WebSocket message (closed with 1009 above)", "",
   set_size<&S::max_frame_bytes, 1024>, show_size<&S::max_frame_bytes>},
  {"max-body-bytes", "limits", "SIZE", "largest HTTP request body (413 above)", "",
   set_size<&S::max_body_bytes, 1024>, show_size<&S::max_body_bytes>},
  {"max-key-bytes", "limits", "SIZE", "longest stream key", "",
   set_size<&S::max_key_bytes, 1>, show_size<&S::max_key_bytes>},
  {"max-depth", "limits", "N", "deepest nesting of one message (at least 2)", "",
   set_count<&S::max_depth, 2, std::numeric_limits<uint32_t>::max()>, show_number<&S::max_depth>},
  {"max-queue-bytes", "limits", "SIZE", "unsent output of one connection before it is closed", "",
   set_size<&S::max_queue_bytes, 1024>, show_size<&S::max_queue_bytes>},
  {"max-room-bytes", "limits", "SIZE",
   "retained stream data of one room, counted as sent (held in memory: about twice that); "
   "pushes over it fail", "", set_size<&S::max_room_bytes, 1024>, show_size<&S::max_room_bytes>},
  {"max-keys", "limits", "N", "keys with a retained stream in one room (pushes to more fail)", "",
   set_count<&S::max_keys, 1, std::numeric_limits<uint32_t>::max()>, show_number<&S::max_keys>},
  {"max-subscriptions", "limits", "N", "keys one connection may follow (gets of more fail)", "",
   set_count<&S::max_subscriptions, 1, std::numeric_limits<uint32_t>::max()>,
   show_number<&S::max_subscriptions>},
  {"max-subscription-bytes", "limits", "SIZE", "total size of the keys one connection follows", "",
   set_size<&S::max_subscription_bytes, 1024>, show_size<&S::max_subscription_bytes>},
  {"max-connections", "limits", "N", "open client sockets of this node", "",
   set_count<&S::max_connections, 1, std::numeric_limits<uint32_t>::max()>,
   show_number<&S::max_connections>},
  {"max-partial-bytes", "limits", "SIZE",
   "partly received messages and bodies, all connections (1013 or 503 above)", "",
   set_size<&S::max_partial_bytes, 1024>, show_size<&S::max_partial_bytes>},
  {"max-connections-per-ip", "limits", "N",
   "open sockets of one client address, IPv6 per /64 (429 above)", "",
   set_count<&S::max_connections_per_ip, 1, std::numeric_limits<uint32_t>::max()>,
   show_number<&S::max_connections_per_ip>},
  {"max-new-rooms-per-minute", "limits", "N", "POST /new of one client address (429 above)", "",
   set_count<&S::max_new_rooms_per_minute, 1, std::numeric_limits<uint32_t>::max()>,
   show_number<&S::max_new_rooms_per_minute>},
  {"max-messages-per-second", "limits", "N",
   "inbound messages of one WebSocket, a second's worth at once (1008 above)", "",
   set_count<&S::max_messages_per_second, 1, std::numeric_limits<uint32_t>::max()>,
   show_number<&S::max_messages_per_second>},

  {"handshake-timeout", "timeouts", "DURATION", "from accept to a complete HTTP request", "",
   set_duration<&S::handshake_timeout>, show_duration<&S::handshake_timeout>},
  {"http-timeout", "timeouts", "DURATION", "idle keep-alive HTTP connection", "",
   set_duration<&S::http_timeout>, show_duration<&S::http_timeout>},
  {"idle-timeout", "timeouts", "DURATION", "WebSocket silence before closing; pinged at half", "",
   set_duration<&S::idle_timeout>, show_duration<&S::idle_timeout>},
  {"close-timeout", "timeouts", "DURATION", "wait for the peer's close frame", "",
   set_duration<&S::close_timeout>, show_duration<&S::close_timeout>},
  {"message-timeout", "timeouts", "DURATION",
   "finish a WebSocket message or HTTP body once begun", "",
   set_duration<&S::message_timeout>, show_duration<&S::message_timeout>},
  {"room-ttl", "timeouts", "DURATION",
   "a room's streams are deleted this long after its last write or connection (memory only: "
   "after its last connection or message)",
   "", set_seconds<&S::room_ttl>, show_duration<&S::room_ttl>},

  {"storage", "storage", "KIND", "disk (rooms survive restarts) or memory", "",
   set_text<&S::storage, check_storage>, show_text<&S::storage>},
  {"data-dir", "storage", "DIR", "the node's database, created when missing (disk)", "",
   set_text<&S::data_dir, check_data_dir>, show_text<&S::data_dir>},
  {"fsync", "storage", "POLICY",
   "always: a push is broadcast once synced to disk; interval: once written, synced every "
   "--fsync-interval; never: once written, the OS syncs", "",
   set_text<&S::fsync, check_fsync>, show_text<&S::fsync>},
  {"fsync-interval", "storage", "DURATION", "how often --fsync interval syncs", "",
   set_duration<&S::fsync_interval>, show_duration<&S::fsync_interval>},
  {"unload-after", "storage", "DURATION",
   "a room without connections or messages this long leaves memory (disk)", "",
   set_duration<&S::unload_after>, show_duration<&S::unload_after>},

  {"io-threads", "threads", "N", "network threads; 0 means one per usable CPU", "",
   set_count<&S::io_threads, 0, max_threads>, show_number<&S::io_threads>},
  {"actor-threads", "threads", "N", "actor scheduler threads; 0 means one per usable CPU", "",
   set_count<&S::actor_threads, 0, max_threads>, show_number<&S::actor_threads>},

  {"log-level", "logging", "LEVEL", "trace, debug, info, warn, error, critical or off", "",
   set_text<&S::log_level, check_log_level>, show_text<&S::log_level>},
  {"log-format", "logging", "FORMAT",
   "text, or json: one object per line with time, level, logger, message, node, room", "",
   set_text<&S::log_format, check_log_format>, show_text<&S::log_format>},

  {"node-name", "cluster", "NAME", "this node's name in the cluster", "node-<port>",
   set_text<&S::node_name, check_node_name>, show_text<&S::node_name>},
  {"cluster-host", "cluster", "HOST", "address to listen on for cluster peers", "",
   set_text<&S::cluster_host, check_host>, show_text<&S::cluster_host>},
  {"cluster-port", "cluster", "PORT", "port to listen on for cluster peers; 0 means no cluster",
   "", set_port<&S::cluster_port>, show_number<&S::cluster_port>},
  {"seeds", "cluster", "LIST", "host:port list of members to join through", "none",
   set_list<&S::seeds, check_seed>, show_list<&S::seeds>},
  {"cluster-name", "cluster", "NAME", "nodes of different clusters never merge", "",
   set_text<&S::cluster_name, check_cluster_name>, show_text<&S::cluster_name>},
  {"secret", "cluster", "SECRET", "same on every node; signs room ids, authenticates peers",
   "kept in --data-dir (disk), random per process (memory)", set_text<&S::secret, check_any>,
   show_text<&S::secret>},
  {"heartbeat-interval", "cluster", "DURATION", "how often members tell each other they live", "",
   set_duration<&S::heartbeat_interval>, show_duration<&S::heartbeat_interval>},
  {"failure-timeout", "cluster", "DURATION", "silence after which a member counts as down", "",
   set_duration<&S::failure_timeout>, show_duration<&S::failure_timeout>},
  {"replicas", "cluster", "N",
   "copies of each room, on the first voting members (--seeds) ranked for it; a push is "
   "acknowledged once a majority of them hold it", "",
   set_count<&S::replicas, 1, 15>, show_number<&S::replicas>},
  {"cluster-tls-cert", "cluster", "FILE",
   "PEM certificate; with --cluster-tls-key, --cluster-tls-ca: mutual TLS between nodes", "none",
   set_text<&S::cluster_tls_cert, check_any>, show_text<&S::cluster_tls_cert>},
  {"cluster-tls-key", "cluster", "FILE", "PEM private key of --cluster-tls-cert", "none",
   set_text<&S::cluster_tls_key, check_any>, show_text<&S::cluster_tls_key>},
  {"cluster-tls-ca", "cluster", "FILE", "PEM authority that signed every node's certificate",
   "none", set_text<&S::cluster_tls_ca, check_any>, show_text<&S::cluster_tls_ca>},
};
// clang-format on

constexpr std::string_view groups[] = {"listener", "access",  "limits",  "timeouts",
                                       "storage",  "threads", "logging", "cluster"};

const option* find_option(std::string_view name) {
  for (const auto& opt : options) {
    if (opt.name == name) return &opt;
  }
  return nullptr;
}

/// " (did you mean X?)" when `name` is a known one spelled with underscores.
std::string suggestion(std::string_view name, std::string_view prefix) {
  std::string dashed(name);
  for (auto& c : dashed) {
    if (c == '_') c = '-';
  }
  if (dashed != name && find_option(dashed) != nullptr) {
    return " (did you mean " + std::string(prefix) + dashed + "?)";
  }
  return {};
}

/// For a setting that was renamed, where it went: an old command line or config file is
/// refused with what to write instead.
std::string renamed_note(std::string_view name, std::string_view prefix) {
  static constexpr std::pair<std::string_view, std::string_view> renamed[] = {
      {"tls-ca", "cluster-tls-ca"},
  };
  for (const auto& [old_name, new_name] : renamed) {
    if (name == old_name) {
      return " (the cluster's TLS settings were renamed: this one is now " + std::string(prefix) +
             std::string(new_name) + ")";
    }
  }
  return {};
}

/// Checks that involve more than one setting; run once every source has been applied.
std::string validate(const settings& s) {
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    return s.tls_cert.empty() ? "tls-key is set without tls-cert"
                              : "tls-cert is set without tls-key";
  }
  const bool cert = !s.cluster_tls_cert.empty();
  const bool key = !s.cluster_tls_key.empty();
  const bool ca = !s.cluster_tls_ca.empty();
  if ((cert || key || ca) && !(cert && key && ca)) {
    std::string missing;
    const auto note = [&missing](bool set, const char* name) {
      if (!set) missing += std::string(missing.empty() ? "" : ", ") + name;
    };
    note(cert, "cluster-tls-cert");
    note(key, "cluster-tls-key");
    note(ca, "cluster-tls-ca");
    return "cluster-tls-cert, cluster-tls-key and cluster-tls-ca go together; missing " + missing;
  }
  if (!s.seeds.empty() && s.cluster_port == 0) {
    return "seeds are set but cluster-port is 0: a node without a cluster listener cannot join";
  }
  if (s.failure_timeout < 3 * s.heartbeat_interval) {
    // The lease lasts the failure timeout less two heartbeats, and is renewed every one.
    return "failure-timeout (" + format_duration(s.failure_timeout) +
           ") must be at least three times heartbeat-interval (" +
           format_duration(s.heartbeat_interval) + ")";
  }
  return {};
}

/// Reads a whole file; an error message naming it on failure.
std::string read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return "config file " + quote(path) + " is a directory";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open config file " + quote(path) + ": " + one_line(std::strerror(errno));
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return "cannot read config file " + quote(path);
  return {};
}

/// One `--name value` from the command line, in order.
struct flag {
  const option* opt;
  std::string spelled;  ///< as the user wrote the name, for messages
  std::string value;
};

load_result fail(std::string message) {
  load_result r;
  r.message = std::move(message);
  r.exit_code = 2;
  return r;
}

}  // namespace

std::optional<milliseconds> parse_duration(const std::string& text) {
  // number [ "." digits ] [ unit ], no sign, no spaces; no unit means seconds.
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) {
    ++i;
  }
  const std::string_view whole(text.data(), i);
  std::string_view fraction;
  if (i < text.size() && text[i] == '.') {
    const std::size_t start = ++i;
    while (i < text.size() && is_digit(text[i])) {
      ++i;
    }
    fraction = std::string_view(text).substr(start, i - start);
    if (fraction.empty()) return std::nullopt;
  }
  const std::string_view unit = std::string_view(text).substr(i);
  const auto unit_ms = duration_unit_ms(unit);
  if (!unit_ms) return std::nullopt;

  const auto whole_value = parse_digits(whole);
  if (!whole_value) return std::nullopt;
  constexpr auto max_ms = static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 2);
  if (*whole_value > max_ms / static_cast<uint64_t>(*unit_ms)) return std::nullopt;
  int64_t ms = static_cast<int64_t>(*whole_value) * *unit_ms;

  while (!fraction.empty() && fraction.back() == '0') {
    fraction.remove_suffix(1);
  }
  if (!fraction.empty()) {
    // Nine digits of fraction times a day still fit in 64 bits; more precision than a
    // millisecond is refused below anyway.
    if (fraction.size() > 9) return std::nullopt;
    int64_t scale = 1;
    for (std::size_t k = 0; k < fraction.size(); ++k) {
      scale *= 10;
    }
    const auto numerator = static_cast<int64_t>(*parse_digits(fraction)) * *unit_ms;
    if (numerator % scale != 0) return std::nullopt;  // finer than a millisecond
    ms += numerator / scale;
  }
  return milliseconds{ms};
}

std::optional<std::size_t> parse_size(const std::string& text) {
  std::string_view digits = text;
  unsigned shift = 0;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  const auto value = parse_digits(digits);
  if (!value) return std::nullopt;
  if (*value > (std::numeric_limits<std::size_t>::max() >> shift)) return std::nullopt;
  return static_cast<std::size_t>(*value << shift);
}

std::string apply_json(settings& s, const std::string& json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, ..." reads better without the tag.
    if (const auto tag_end = what.find("] ");
        what.rfind("[json.", 0) == 0 && tag_end != what.npos) {
      what.erase(0, tag_end + 2);
    }
    return "malformed JSON: " + one_line(what);
  }
  if (!doc.is_object()) {
    return "a config file must hold one JSON object, not " + std::string(doc.type_name());
  }

  // All or nothing: a bad key leaves `s` as it was.
  settings updated = s;
  for (const auto& [key, value] : doc.items()) {
    const option* opt = find_option(key);
    if (opt == nullptr) {
      return "unknown config key " + quote(key) + suggestion(key, "") + renamed_note(key, "");
    }
    try {
      if (auto problem = opt->set(updated, value); !problem.empty()) {
        return "config key " + quote(key) + ": " + problem;
      }
    } catch (const json::exception& e) {
      // The setters check types before reading values; this is a second line of defence.
      return "config key " + quote(key) + ": " + one_line(e.what());
    }
  }
  s = std::move(updated);
  return {};
}

load_result load(int argc, const char* const* argv) {
  // First pass: split the command line into flags, so that --config can be read before the
  // flags that override it, wherever it stands.
  std::vector<flag> flags;
  std::optional<std::string> config_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--version" || arg == "--settings-reference") {
      load_result r;
      r.message = arg == "--version"              ? std::string{"driftd "} + version()
                  : arg == "--settings-reference" ? settings_reference()
                                                  : usage();
      r.exit_code = 0;
      return r;
    }
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      return fail("unexpected argument " + quote(arg) + " (flags start with --; see --help)");
    }
    const auto equals = arg.find('=');
    const std::string spelled = arg.substr(0, equals);
    const std::string name = spelled.substr(2);
    std::optional<std::string> value;
    if (equals != std::string::npos) value = arg.substr(equals + 1);

    if (name == "help" || name == "version" || name == "settings-reference") {
      return fail("--" + name + " takes no value");
    }
    const option* opt = find_option(name);
    if (opt == nullptr && name != "config") {
      return fail("unknown flag " + quote(spelled) + suggestion(name, "--") +
                  renamed_note(name, "--") + " (see --help)");
    }
    if (!value) {
      // "--port --host x" is a forgotten value, not a port named "--host".
      if (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("--", 0) == 0) {
        return fail(spelled + " needs a value");
      }
      value = argv[++i];
    }
    if (opt == nullptr) {
      if (config_path) return fail("--config given more than once");
      if (value->empty()) return fail("--config needs a value");
      config_path = std::move(*value);
    } else {
      flags.push_back({opt, spelled, std::move(*value)});
    }
  }

  // --api-key may be given more than once: the keys add up, so that a key being replaced
  // can be accepted beside its successor.
  for (auto first = flags.begin(); first != flags.end(); ++first) {
    if (first->opt->name != "api-key") continue;
    for (auto later = first + 1; later != flags.end();) {
      if (later->opt != first->opt) {
        ++later;
        continue;
      }
      first->value += "," + later->value;
      later = flags.erase(later);
    }
    break;
  }

  settings s;
  if (config_path) {
    std::string text;
    if (auto problem = read_file(*config_path, text); !problem.empty()) return fail(problem);
    if (auto problem = apply_json(s, text); !problem.empty()) {
      return fail("config file " + quote(*config_path) + ": " + problem);
    }
  }
  for (const auto& f : flags) {
    if (auto problem = f.opt->set(s, json(f.value)); !problem.empty()) {
      return fail(f.spelled + ": " + problem);
    }
  }
  if (auto problem = validate(s); !problem.empty()) return fail(problem);

  load_result r;
  r.values = std::move(s);
  return r;
}

std::string usage() {
  const settings defaults;
  std::string out =
      "driftd: a clustered WebSocket relay speaking the DriftDB protocol.\n"
      "\n"
      "usage: driftd [--config FILE] [flags]\n"
      "\n"
      "Flags take a value as --flag VALUE or --flag=VALUE and override the config file.\n"
      "SIZE: bytes, or with k, m, g (powers of 1024). DURATION: 250ms, 10s, 5m, 24h, 1d;\n"
      "a plain number is seconds. LIST: comma-separated.\n"
      "\n";
  constexpr std::size_t column = 34;
  const auto line = [&](const std::string& left, std::string_view right) {
    std::string l = "  " + left;
    l += (l.size() + 2 <= column) ? std::string(column - l.size(), ' ') : std::string("  ");
    out += l;
    out += right;
    out += '\n';
  };
  line("--config FILE", "read settings from a JSON file whose keys are the flag names");
  line("-h, --help", "print this help and exit");
  line("--version", "print the version and exit");
  line("--settings-reference", "print every setting as Markdown and exit");
  for (const auto group : groups) {
    out += '\n';
    out += group;
    out += ":\n";
    for (const auto& opt : options) {
      if (opt.group != group) continue;
      std::string shown_default = opt.show(defaults);
      if (shown_default.empty()) shown_default = opt.if_empty;
      line("--" + std::string(opt.name) + " " + std::string(opt.metavar),
           std::string(opt.help) + " (default: " + shown_default + ")");
    }
  }
  return out;
}

const char* version() {
  return DRIFTD_VERSION;
}

std::string settings_reference() {
  const settings defaults;
  // Table cells may not hold a bare '|'.
  const auto cell = [](std::string_view text) {
    std::string out;
    for (const char c : text) {
      if (c == '|') out += '\\';
      out += c;
    }
    return out;
  };
  std::string out =
      "# driftd settings\n"
      "\n"
      "Made by `driftd --settings-reference` from the table that also makes `driftd --help`;\n"
      "a test checks that this file is what the program prints.\n"
      "\n"
      "Every setting is a flag, `--name VALUE` or `--name=VALUE`, and a key of the JSON\n"
      "config file read with `--config FILE` (an object whose keys are the names below\n"
      "without the dashes, e.g. `{\"port\": 8080, \"room-ttl\": \"24h\"}`). Flags override\n"
      "the file. Values: SIZE is bytes, or with `k`, `m`, `g` (powers of 1024); DURATION is\n"
      "`250ms`, `10s`, `5m`, `24h` or `1d`, and a plain number is seconds; LIST is\n"
      "comma-separated (a JSON array in the file).\n"
      "\n"
      "Besides the settings: `--config FILE`, `--help` (`-h`), `--version` and\n"
      "`--settings-reference`.\n";
  for (const auto group : groups) {
    out += "\n## ";
    out += group;
    out += "\n\n| setting | value | default | what it does |\n|---|---|---|---|\n";
    for (const auto& opt : options) {
      if (opt.group != group) continue;
      const std::string shown_default = opt.show(defaults);
      out += "| `--" + std::string(opt.name) + "` | " + std::string(opt.metavar) + " | ";
      out += shown_default.empty() ? cell(opt.if_empty.empty() ? "empty" : opt.if_empty)
                                   : "`" + cell(shown_default) + "`";
      out += " | " + cell(opt.help) + " |\n";
    }
  }
  return out;
}

}  // namespace driftd::config
