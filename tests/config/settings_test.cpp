#include "config/settings.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

namespace driftd::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Every setting's flag name; the config keys are the same names.
// clang-format off
const std::vector<std::string> setting_names = {
    "host", "port", "public-url", "cors-origins", "tls-cert", "tls-key",
    "max-frame-bytes", "max-body-bytes", "max-key-bytes", "max-depth", "max-queue-bytes",
    "max-room-bytes", "max-keys", "max-subscriptions", "max-subscription-bytes",
    "max-connections", "max-partial-bytes", "max-connections-per-ip", "max-new-rooms-per-minute",
    "max-messages-per-second",
    "handshake-timeout", "http-timeout", "idle-timeout", "close-timeout", "message-timeout",
    "room-ttl",
    "storage", "data-dir", "fsync", "fsync-interval", "unload-after",
    "io-threads", "actor-threads",
    "log-level",
    "node-name", "cluster-host", "cluster-port", "seeds", "cluster-name", "secret",
    "heartbeat-interval", "failure-timeout", "cluster-tls-cert", "cluster-tls-key",
    "cluster-tls-ca"};
// clang-format on

load_result load_args(std::vector<std::string> args) {
  args.insert(args.begin(), "driftd");
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return load(static_cast<int>(argv.size()), argv.data());
}

/// Loads `args`, expecting success.
settings loaded(std::vector<std::string> args) {
  auto r = load_args(std::move(args));
  EXPECT_TRUE(r.values.has_value()) << r.message;
  return r.values.value_or(settings{});
}

/// Loads `args`, expecting exit code 2 and a one-line message holding every piece of `names`.
void expect_error(std::vector<std::string> args, std::initializer_list<std::string> names) {
  std::string shown;
  for (const auto& a : args)
    shown += a + " ";
  const auto r = load_args(std::move(args));
  EXPECT_FALSE(r.values.has_value()) << "accepted: " << shown;
  EXPECT_EQ(r.exit_code, 2) << shown;
  EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
  for (const auto& name : names) {
    EXPECT_NE(r.message.find(name), std::string::npos)
        << "message for `" << shown << "` lacks " << name << ": " << r.message;
  }
}

void expect_same(const settings& a, const settings& b) {
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.public_url, b.public_url);
  EXPECT_EQ(a.cors_origins, b.cors_origins);
  EXPECT_EQ(a.max_frame_bytes, b.max_frame_bytes);
  EXPECT_EQ(a.max_body_bytes, b.max_body_bytes);
  EXPECT_EQ(a.max_key_bytes, b.max_key_bytes);
  EXPECT_EQ(a.max_depth, b.max_depth);
  EXPECT_EQ(a.max_queue_bytes, b.max_queue_bytes);
  EXPECT_EQ(a.max_connections, b.max_connections);
  EXPECT_EQ(a.handshake_timeout, b.handshake_timeout);
  EXPECT_EQ(a.http_timeout, b.http_timeout);
  EXPECT_EQ(a.idle_timeout, b.idle_timeout);
  EXPECT_EQ(a.close_timeout, b.close_timeout);
  EXPECT_EQ(a.room_ttl, b.room_ttl);
  EXPECT_EQ(a.io_threads, b.io_threads);
  EXPECT_EQ(a.actor_threads, b.actor_threads);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.node_name, b.node_name);
  EXPECT_EQ(a.cluster_host, b.cluster_host);
  EXPECT_EQ(a.cluster_port, b.cluster_port);
  EXPECT_EQ(a.seeds, b.seeds);
  EXPECT_EQ(a.cluster_name, b.cluster_name);
  EXPECT_EQ(a.secret, b.secret);
  EXPECT_EQ(a.heartbeat_interval, b.heartbeat_interval);
  EXPECT_EQ(a.failure_timeout, b.failure_timeout);
  EXPECT_EQ(a.cluster_tls_cert, b.cluster_tls_cert);
  EXPECT_EQ(a.cluster_tls_key, b.cluster_tls_key);
  EXPECT_EQ(a.cluster_tls_ca, b.cluster_tls_ca);
  EXPECT_EQ(a.tls_cert, b.tls_cert);
  EXPECT_EQ(a.tls_key, b.tls_key);
}

/// A file under the test temp dir, named after the running test, removed at scope exit.
class temp_file {
 public:
  explicit temp_file(const std::string& contents) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(::testing::TempDir()) /
            (std::string("driftd_") + info->name() + "_" + std::to_string(::getpid()) + "_" +
             std::to_string(serial_++) + ".json");
    std::ofstream out(path_, std::ios::binary);
    out << contents;
  }
  ~temp_file() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;

  std::string path() const { return path_.string(); }

 private:
  static inline int serial_ = 0;
  fs::path path_;
};

/// The repository root: $DRIFTD_SOURCE_DIR, else the source tree this test was built from
/// (the build tree may be anywhere).
fs::path source_dir() {
  if (const char* env = std::getenv("DRIFTD_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return DRIFTD_TEST_SOURCE_DIR;
}

std::string example(const std::string& name) {
  const auto root = source_dir();
  EXPECT_FALSE(root.empty()) << "set DRIFTD_SOURCE_DIR to the repository root";
  return (root / "config" / name).string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// -- defaults --

TEST(settings_load, no_arguments_gives_the_defaults) {
  const auto r = load_args({});
  ASSERT_TRUE(r.values) << r.message;
  EXPECT_EQ(r.exit_code, 0);
  const settings& s = *r.values;
  EXPECT_EQ(s.host, "127.0.0.1");
  EXPECT_EQ(s.port, 8080);
  EXPECT_EQ(s.public_url, "");
  EXPECT_TRUE(s.cors_origins.empty());
  EXPECT_EQ(s.max_frame_bytes, 1048576u);
  EXPECT_EQ(s.max_body_bytes, 1048576u);
  EXPECT_EQ(s.max_key_bytes, 1024u);
  EXPECT_EQ(s.max_depth, 64u);
  EXPECT_EQ(s.max_queue_bytes, 16u << 20);
  EXPECT_EQ(s.max_connections, 100000u);
  EXPECT_EQ(s.handshake_timeout, 10s);
  EXPECT_EQ(s.http_timeout, 30s);
  EXPECT_EQ(s.idle_timeout, 60s);
  EXPECT_EQ(s.close_timeout, 5s);
  EXPECT_EQ(s.room_ttl, 24h);
  EXPECT_EQ(s.io_threads, 0u);
  EXPECT_EQ(s.actor_threads, 0u);
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.node_name, "");
  EXPECT_EQ(s.cluster_host, "127.0.0.1");
  EXPECT_EQ(s.cluster_port, 0);
  EXPECT_TRUE(s.seeds.empty());
  EXPECT_EQ(s.cluster_name, "driftd");
  EXPECT_EQ(s.secret, "");
  EXPECT_EQ(s.heartbeat_interval, 250ms);
  EXPECT_EQ(s.failure_timeout, 2s);
  EXPECT_EQ(s.cluster_tls_cert, "");
  EXPECT_EQ(s.cluster_tls_key, "");
  EXPECT_EQ(s.cluster_tls_ca, "");
}

// -- flags --

TEST(settings_load, every_flag_sets_its_setting) {
  // clang-format off
  const settings s = loaded({
      "--host", "0.0.0.0",
      "--port", "9000",
      "--public-url", "https://relay.example.com",
      "--cors-origins", "https://a.example,https://b.example",
      "--max-frame-bytes", "2m",
      "--max-body-bytes", "512k",
      "--max-key-bytes", "100",
      "--max-depth", "8",
      "--max-queue-bytes", "1g",
      "--max-connections", "50",
      "--handshake-timeout", "3s",
      "--http-timeout", "1m",
      "--idle-timeout", "90s",
      "--close-timeout", "750ms",
      "--room-ttl", "2h",
      "--io-threads", "4",
      "--actor-threads", "6",
      "--log-level", "debug",
      "--node-name", "n1",
      "--cluster-host", "10.0.0.1",
      "--cluster-port", "7100",
      "--seeds", "10.0.0.1:7100,10.0.0.2:7100",
      "--cluster-name", "prod",
      "--secret", "s3cret",
      "--heartbeat-interval", "100ms",
      "--failure-timeout", "1.5",
      "--cluster-tls-cert", "cert.pem",
      "--cluster-tls-key", "key.pem",
      "--cluster-tls-ca", "ca.pem"});
  // clang-format on
  EXPECT_EQ(s.host, "0.0.0.0");
  EXPECT_EQ(s.port, 9000);
  EXPECT_EQ(s.public_url, "https://relay.example.com");
  EXPECT_EQ(s.cors_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(s.max_frame_bytes, 2u << 20);
  EXPECT_EQ(s.max_body_bytes, 512u << 10);
  EXPECT_EQ(s.max_key_bytes, 100u);
  EXPECT_EQ(s.max_depth, 8u);
  EXPECT_EQ(s.max_queue_bytes, std::size_t{1} << 30);
  EXPECT_EQ(s.max_connections, 50u);
  EXPECT_EQ(s.handshake_timeout, 3s);
  EXPECT_EQ(s.http_timeout, 60s);
  EXPECT_EQ(s.idle_timeout, 90s);
  EXPECT_EQ(s.close_timeout, 750ms);
  EXPECT_EQ(s.room_ttl, 2h);
  EXPECT_EQ(s.io_threads, 4u);
  EXPECT_EQ(s.actor_threads, 6u);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.node_name, "n1");
  EXPECT_EQ(s.cluster_host, "10.0.0.1");
  EXPECT_EQ(s.cluster_port, 7100);
  EXPECT_EQ(s.seeds, (std::vector<std::string>{"10.0.0.1:7100", "10.0.0.2:7100"}));
  EXPECT_EQ(s.cluster_name, "prod");
  EXPECT_EQ(s.secret, "s3cret");
  EXPECT_EQ(s.heartbeat_interval, 100ms);
  EXPECT_EQ(s.failure_timeout, 1500ms);
  EXPECT_EQ(s.cluster_tls_cert, "cert.pem");
  EXPECT_EQ(s.cluster_tls_key, "key.pem");
  EXPECT_EQ(s.cluster_tls_ca, "ca.pem");
}

TEST(settings_load, flag_equals_value_form) {
  const settings s =
      loaded({"--port=9001", "--room-ttl=1d", "--seeds=h1:1,h2:2", "--cluster-port=7001",
              "--secret=a=b", "--max-frame-bytes=64k", "--public-url="});
  EXPECT_EQ(s.port, 9001);
  EXPECT_EQ(s.room_ttl, 24h);
  EXPECT_EQ(s.seeds, (std::vector<std::string>{"h1:1", "h2:2"}));
  EXPECT_EQ(s.cluster_port, 7001);
  EXPECT_EQ(s.secret, "a=b");  // only the first '=' splits
  EXPECT_EQ(s.max_frame_bytes, 64u << 10);
  EXPECT_EQ(s.public_url, "");
}

TEST(settings_load, a_later_flag_wins_over_an_earlier_one) {
  EXPECT_EQ(loaded({"--port", "9000", "--port", "9001"}).port, 9001);
}

TEST(settings_load, port_zero_means_any_port_and_cluster_port_zero_means_no_cluster) {
  const settings s = loaded({"--port", "0", "--cluster-port", "0"});
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.cluster_port, 0);
}

TEST(settings_load, list_items_are_trimmed_and_an_empty_list_clears) {
  EXPECT_EQ(loaded({"--cors-origins", " a , b "}).cors_origins,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(loaded({"--cors-origins", ""}).cors_origins.empty());
}

TEST(settings_load, ipv6_seeds_are_bracketed) {
  EXPECT_EQ(loaded({"--cluster-port", "7001", "--seeds", "[::1]:7001"}).seeds,
            (std::vector<std::string>{"[::1]:7001"}));
  expect_error({"--cluster-port", "7001", "--seeds", "::1:7001"}, {"--seeds", "::1:7001"});
}

TEST(settings_load, public_url_loses_its_trailing_slash) {
  EXPECT_EQ(loaded({"--public-url", "https://relay.example.com/"}).public_url,
            "https://relay.example.com");
  expect_error({"--public-url", "relay.example.com"}, {"--public-url", "relay.example.com"});
  expect_error({"--public-url", "https://"}, {"--public-url", "https://"});
}

// -- config file and flags together --

TEST(settings_load, flags_override_the_file_whichever_comes_first) {
  const temp_file file(R"({"port": 8100, "host": "0.0.0.0", "log-level": "warn"})");
  for (const auto& args : {std::vector<std::string>{"--config", file.path(), "--port", "9000"},
                           std::vector<std::string>{"--port", "9000", "--config", file.path()},
                           std::vector<std::string>{"--port=9000", "--config=" + file.path()}}) {
    const settings s = loaded(args);
    EXPECT_EQ(s.port, 9000);         // from the flag
    EXPECT_EQ(s.host, "0.0.0.0");    // from the file
    EXPECT_EQ(s.log_level, "warn");  // from the file
    EXPECT_EQ(s.max_depth, 64u);     // default
  }
}

TEST(settings_load, cross_checks_see_the_file_and_the_flags_together) {
  const temp_file file(R"({"cluster-tls-cert": "c.pem", "cluster-tls-key": "k.pem"})");
  expect_error({"--config", file.path()}, {"cluster-tls-ca"});
  const settings s = loaded({"--cluster-tls-ca", "ca.pem", "--config", file.path()});
  EXPECT_EQ(s.cluster_tls_cert, "c.pem");
  EXPECT_EQ(s.cluster_tls_ca, "ca.pem");
}

TEST(settings_load, config_given_twice_is_an_error) {
  const temp_file file("{}");
  expect_error({"--config", file.path(), "--config", file.path()}, {"--config"});
}

TEST(settings_load, missing_config_file_is_an_error_naming_it) {
  const std::string path = ::testing::TempDir() + "/driftd-no-such-file.json";
  expect_error({"--config", path}, {path});
}

TEST(settings_load, directory_as_config_file_is_an_error_naming_it) {
  const std::string dir = ::testing::TempDir();
  expect_error({"--config", dir}, {dir, "directory"});
}

TEST(settings_load, malformed_json_file_is_an_error_naming_it) {
  const temp_file file("{\"port\": 8080,\n  \"host\": }\n");
  expect_error({"--config", file.path()}, {file.path(), "malformed JSON", "line 2"});
}

TEST(settings_load, unknown_key_in_file_is_an_error_naming_file_and_key) {
  const temp_file file(R"({"port": 8080, "colour": "blue"})");
  expect_error({"--config", file.path()}, {file.path(), "colour"});
}

TEST(settings_load, bad_value_in_file_names_file_key_and_value) {
  const temp_file file(R"({"max-depth": 1})");
  expect_error({"--config", file.path()}, {file.path(), "max-depth", "1"});
}

// -- apply_json --

TEST(settings_apply_json, numbers_strings_and_arrays) {
  settings s;
  ASSERT_EQ(apply_json(s, R"({
      "max-frame-bytes": 1048576, "max-body-bytes": "2m", "max-key-bytes": "1k",
      "room-ttl": 86400, "idle-timeout": 0.5, "close-timeout": "250ms",
      "port": 8081, "cluster-port": "7001",
      "cors-origins": ["https://a.example", "https://b.example"],
      "seeds": "h1:7001,h2:7002"})"),
            "");
  EXPECT_EQ(s.max_frame_bytes, 1048576u);
  EXPECT_EQ(s.max_body_bytes, 2u << 20);
  EXPECT_EQ(s.max_key_bytes, 1024u);
  EXPECT_EQ(s.room_ttl, 24h);
  EXPECT_EQ(s.idle_timeout, 500ms);
  EXPECT_EQ(s.close_timeout, 250ms);
  EXPECT_EQ(s.port, 8081);
  EXPECT_EQ(s.cluster_port, 7001);
  EXPECT_EQ(s.cors_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(s.seeds, (std::vector<std::string>{"h1:7001", "h2:7002"}));
}

TEST(settings_apply_json, empty_object_changes_nothing) {
  settings s;
  s.port = 1234;
  EXPECT_EQ(apply_json(s, "{}"), "");
  EXPECT_EQ(s.port, 1234);
}

TEST(settings_apply_json, unknown_key_is_named) {
  settings s;
  const auto error = apply_json(s, R"({"prot": 8080})");
  EXPECT_NE(error.find("\"prot\""), std::string::npos) << error;
}

TEST(settings_apply_json, underscore_spelling_gets_a_hint) {
  settings s;
  const auto error = apply_json(s, R"({"max_depth": 8})");
  EXPECT_NE(error.find("max_depth"), std::string::npos) << error;
  EXPECT_NE(error.find("max-depth"), std::string::npos) << error;
}

TEST(settings_apply_json, wrong_types_name_the_key) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"port": true})", "port"},
      {R"({"port": 80.5})", "port"},
      {R"({"port": -1})", "port"},
      {R"({"host": 5})", "host"},
      {R"({"log-level": null})", "log-level"},
      {R"({"seeds": [7001]})", "seeds"},
      {R"({"cors-origins": {"a": 1}})", "cors-origins"},
      {R"({"room-ttl": []})", "room-ttl"},
      {R"({"max-frame-bytes": 1.5})", "max-frame-bytes"},
      {R"({"max-frame-bytes": -4096})", "max-frame-bytes"},
      {R"({"idle-timeout": false})", "idle-timeout"},
      {R"({"io-threads": "many"})", "io-threads"},
  };
  for (const auto& [doc, key] : cases) {
    settings s;
    const auto error = apply_json(s, doc);
    EXPECT_NE(error.find(std::string("\"") + key + "\""), std::string::npos)
        << doc << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(settings_apply_json, malformed_json_is_an_error) {
  settings s;
  for (const char* doc : {"", "{", "{\"port\": }", "{\"port\": 1,}", "nope"}) {
    const auto error = apply_json(s, doc);
    EXPECT_NE(error.find("malformed JSON"), std::string::npos) << doc << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(settings_apply_json, top_level_must_be_an_object) {
  settings s;
  EXPECT_NE(apply_json(s, "[1, 2]"), "");
  EXPECT_NE(apply_json(s, "8080"), "");
}

TEST(settings_apply_json, a_bad_key_leaves_the_settings_untouched) {
  settings s;
  EXPECT_NE(apply_json(s, R"({"port": 9000, "max-depth": 0})"), "");
  EXPECT_EQ(s.port, 8080);
}

TEST(settings_apply_json, first_bad_key_in_document_order_is_reported) {
  settings s;
  const auto error = apply_json(s, R"({"zzz": 1, "aaa": 2})");
  EXPECT_NE(error.find("zzz"), std::string::npos) << error;
}

// -- parse_duration / parse_size --

TEST(settings_parse_duration, units_and_plain_seconds) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds{250});
  EXPECT_EQ(parse_duration("10s"), milliseconds{10000});
  EXPECT_EQ(parse_duration("5m"), milliseconds{300000});
  EXPECT_EQ(parse_duration("24h"), milliseconds{86400000});
  EXPECT_EQ(parse_duration("1d"), milliseconds{86400000});
  EXPECT_EQ(parse_duration("30"), milliseconds{30000});
  EXPECT_EQ(parse_duration("0.5"), milliseconds{500});
  EXPECT_EQ(parse_duration("1.25s"), milliseconds{1250});
  EXPECT_EQ(parse_duration("0.5h"), milliseconds{1800000});
  EXPECT_EQ(parse_duration("0"), milliseconds{0});
  EXPECT_EQ(parse_duration("2.500"), milliseconds{2500});
}

TEST(settings_parse_duration, bad_text_is_refused) {
  for (const char* bad : {"",
                          "10x",
                          "-1s",
                          "-1",
                          "+1s",
                          " 10s",
                          "10s ",
                          "10 s",
                          "s",
                          "ms",
                          ".5",
                          "1.",
                          "1.5.2",
                          "1e3",
                          "10S",
                          "1.5ms",
                          "0.0001",
                          "10sec",
                          "99999999999999999999",
                          "9999999999999999d"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(settings_parse_size, suffixes_are_powers_of_1024) {
  EXPECT_EQ(parse_size("512k"), std::size_t{512} << 10);
  EXPECT_EQ(parse_size("16m"), std::size_t{16} << 20);
  EXPECT_EQ(parse_size("1g"), std::size_t{1} << 30);
  EXPECT_EQ(parse_size("1024"), std::size_t{1024});
  EXPECT_EQ(parse_size("1048576"), std::size_t{1048576});
  EXPECT_EQ(parse_size("2K"), std::size_t{2048});
  EXPECT_EQ(parse_size("0"), std::size_t{0});
}

TEST(settings_parse_size, bad_text_is_refused) {
  for (const char* bad : {"", "k", "-1", "-1k", "1.5m", "1kb", "1t", "1 k", " 1", "1,024", "0x10",
                          "12abc", "99999999999999999999", "99999999999999999g"}) {
    EXPECT_EQ(parse_size(bad), std::nullopt) << '"' << bad << '"';
  }
}

// -- validation --

TEST(settings_validation, ports) {
  expect_error({"--port", "70000"}, {"--port", "70000"});
  expect_error({"--port", "-1"}, {"--port", "-1"});
  expect_error({"--port", "http"}, {"--port", "http"});
  expect_error({"--port="}, {"--port"});
  expect_error({"--cluster-port", "65536"}, {"--cluster-port", "65536"});
  EXPECT_EQ(loaded({"--port", "65535"}).port, 65535);
}

TEST(settings_validation, log_level) {
  expect_error({"--log-level", "verbose"}, {"--log-level", "verbose"});
  expect_error({"--log-level", "INFO"}, {"--log-level", "INFO"});
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_EQ(loaded({"--log-level", level}).log_level, level);
  }
}

TEST(settings_validation, seeds_are_host_colon_port) {
  const std::vector<std::string> with_cluster = {"--cluster-port", "7001", "--seeds"};
  const auto seeds = [&](const std::string& value) {
    auto args = with_cluster;
    args.push_back(value);
    return args;
  };
  expect_error(seeds("127.0.0.1"), {"--seeds", "127.0.0.1"});
  expect_error(seeds("h:0"), {"--seeds", "h:0"});
  expect_error(seeds("h:70000"), {"--seeds", "h:70000"});
  expect_error(seeds("h:"), {"--seeds", "h:"});
  expect_error(seeds("h:p"), {"--seeds", "h:p"});
  expect_error(seeds(":7001"), {"--seeds", ":7001"});
  expect_error(seeds("a:1,,b:2"), {"--seeds", "a:1,,b:2"});
  expect_error(seeds("a:1,b"), {"--seeds", "\"b\""});
}

TEST(settings_validation, seeds_need_a_cluster_port) {
  expect_error({"--seeds", "127.0.0.1:7001"}, {"seeds", "cluster-port"});
}

TEST(settings_validation, cluster_tls_files_come_all_three_or_none) {
  expect_error({"--cluster-tls-cert", "c.pem"}, {"cluster-tls-key", "cluster-tls-ca"});
  expect_error({"--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem"}, {"cluster-tls-ca"});
  expect_error({"--cluster-tls-ca", "ca.pem"}, {"cluster-tls-cert", "cluster-tls-key"});
}

TEST(settings_validation, client_tls_files_come_both_or_neither) {
  expect_error({"--tls-cert", "c.pem"}, {"tls-cert is set without tls-key"});
  expect_error({"--tls-key", "k.pem"}, {"tls-key is set without tls-cert"});
  const settings s = loaded({"--tls-cert", "c.pem", "--tls-key", "k.pem"});
  EXPECT_EQ(s.tls_cert, "c.pem");
  EXPECT_EQ(s.tls_key, "k.pem");
  EXPECT_EQ(settings{}.tls_cert, "");
}

TEST(settings_validation, the_old_cluster_tls_names_point_to_the_new_ones) {
  expect_error({"--tls-ca", "ca.pem"}, {"--tls-ca", "--cluster-tls-ca"});
  settings s;
  const auto problem = apply_json(s, R"({"tls-ca": "ca.pem"})");
  EXPECT_NE(problem.find("cluster-tls-ca"), std::string::npos) << problem;
}

TEST(settings_validation, limits) {
  expect_error({"--max-depth", "1"}, {"--max-depth", "1"});
  expect_error({"--max-depth", "0"}, {"--max-depth", "0"});
  EXPECT_EQ(loaded({"--max-depth", "2"}).max_depth, 2u);
  expect_error({"--max-key-bytes", "0"}, {"--max-key-bytes", "0"});
  EXPECT_EQ(loaded({"--max-key-bytes", "1"}).max_key_bytes, 1u);
  for (const char* flag : {"--max-frame-bytes", "--max-body-bytes", "--max-queue-bytes"}) {
    expect_error({flag, "1023"}, {flag, "1023"});
    expect_error({flag, "lots"}, {flag, "lots"});
    EXPECT_TRUE(load_args({flag, "1k"}).values) << flag;
  }
  expect_error({"--max-connections", "0"}, {"--max-connections", "0"});
  expect_error({"--io-threads", "100000"}, {"--io-threads", "100000"});
  expect_error({"--actor-threads", "-2"}, {"--actor-threads", "-2"});
}

TEST(settings_validation, cors_origins_are_non_empty) {
  expect_error({"--cors-origins", "a,,b"}, {"--cors-origins", "a,,b"});
  expect_error({"--cors-origins", "a, "}, {"--cors-origins"});
  settings s;
  const auto error = apply_json(s, R"({"cors-origins": ["https://a.example", ""]})");
  EXPECT_NE(error.find("cors-origins"), std::string::npos) << error;
}

TEST(settings_validation, timeouts_are_positive) {
  for (const char* flag : {"--handshake-timeout", "--http-timeout", "--idle-timeout",
                           "--close-timeout", "--heartbeat-interval", "--failure-timeout"}) {
    expect_error({flag, "0"}, {flag, "0"});
    expect_error({flag, "0ms"}, {flag, "0ms"});
    expect_error({flag, "-1s"}, {flag, "-1s"});
    expect_error({flag, "10x"}, {flag, "10x"});
    expect_error({flag, ""}, {flag});
  }
}

TEST(settings_validation, room_ttl_is_whole_seconds_and_at_least_one) {
  expect_error({"--room-ttl", "0"}, {"--room-ttl", "0"});
  expect_error({"--room-ttl", "0.5"}, {"--room-ttl", "0.5"});
  expect_error({"--room-ttl", "999ms"}, {"--room-ttl", "999ms"});
  expect_error({"--room-ttl", "1500ms"}, {"--room-ttl", "1500ms"});
  EXPECT_EQ(loaded({"--room-ttl", "1s"}).room_ttl, 1s);
  EXPECT_EQ(loaded({"--room-ttl", "2000ms"}).room_ttl, 2s);
  expect_error({"--room-ttl", "100000d"}, {"--room-ttl", "100000d"});
}

TEST(settings_validation, failure_timeout_exceeds_heartbeat_interval) {
  expect_error({"--heartbeat-interval", "2s"}, {"failure-timeout", "heartbeat-interval"});
  EXPECT_TRUE(load_args({"--heartbeat-interval", "1s", "--failure-timeout", "3s"}).values);
}

TEST(settings_validation, names) {
  expect_error({"--cluster-name", ""}, {"--cluster-name"});
  expect_error({"--node-name", "a b"}, {"--node-name", "a b"});
  expect_error({"--host", ""}, {"--host"});
  EXPECT_EQ(loaded({"--node-name", "node-1.eu_west"}).node_name, "node-1.eu_west");
}

TEST(settings_validation, control_characters_stay_out_of_the_message) {
  expect_error({"--log-level", "in\nfo"}, {"--log-level", "\\x0a"});
}

// -- command-line mistakes --

TEST(settings_load, missing_value_is_named) {
  expect_error({"--port"}, {"--port needs a value"});
  expect_error({"--port", "--host", "x"}, {"--port needs a value"});
  expect_error({"--config"}, {"--config needs a value"});
}

TEST(settings_load, unknown_flag_is_named) {
  expect_error({"--bogus", "1"}, {"--bogus"});
  expect_error({"--bogus=1"}, {"--bogus"});
  expect_error({"--max_depth", "3"}, {"--max_depth", "--max-depth"});
  expect_error({"-p", "80"}, {"-p"});
}

TEST(settings_load, positional_argument_is_an_error) {
  expect_error({"8080"}, {"8080"});
}

// -- help --

TEST(settings_load, help_exits_zero_with_the_usage) {
  for (const char* flag : {"--help", "-h"}) {
    const auto r = load_args({"--port", "9000", flag});
    EXPECT_FALSE(r.values.has_value());
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.message, usage());
  }
}

TEST(settings_usage, describes_driftd_and_shows_the_usage_line) {
  const auto text = usage();
  EXPECT_EQ(text.rfind("driftd", 0), 0u) << text;
  EXPECT_LT(text.find('\n'), text.find("driftd [--config FILE] [flags]"));
  EXPECT_NE(text.find("driftd [--config FILE] [flags]"), std::string::npos);
}

TEST(settings_usage, mentions_every_flag_once_with_its_default) {
  const auto text = usage();
  for (const auto& name : setting_names) {
    const std::string flag = "--" + name + " ";
    const auto at = text.find("\n  " + flag);
    ASSERT_NE(at, std::string::npos) << flag;
    EXPECT_EQ(text.find("\n  " + flag, at + 1), std::string::npos) << flag << " listed twice";
    const auto line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
    EXPECT_NE(line.find("(default: "), std::string::npos) << line;
  }
  EXPECT_NE(text.find("--config FILE"), std::string::npos);
  EXPECT_NE(text.find("--help"), std::string::npos);
  EXPECT_NE(text.find("-h"), std::string::npos);
}

TEST(settings_usage, groups_and_defaults_read_back) {
  const auto text = usage();
  std::size_t last = 0;
  for (const char* group :
       {"listener:", "limits:", "timeouts:", "threads:", "logging:", "cluster:"}) {
    const auto at = text.find(std::string("\n") + group + "\n");
    ASSERT_NE(at, std::string::npos) << group;
    EXPECT_GT(at, last) << group << " out of order";
    last = at;
  }
  EXPECT_NE(text.find("(default: 1m)"), std::string::npos);
  EXPECT_NE(text.find("(default: 250ms)"), std::string::npos);
  EXPECT_NE(text.find("(default: 1d)"), std::string::npos);
  EXPECT_NE(text.find("(default: 8080)"), std::string::npos);
}

// -- limits on partial input, per address and per connection --

/// `--name METAVAR` is listed once in --help, with `shown` as its default.
void expect_listed_once(const std::string& name, const std::string& metavar,
                        const std::string& shown) {
  const auto text = usage();
  const std::string flag = "\n  --" + name + " " + metavar + " ";
  const auto at = text.find(flag);
  ASSERT_NE(at, std::string::npos) << name;
  EXPECT_EQ(text.find(flag, at + 1), std::string::npos) << name << " listed twice";
  const auto line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  EXPECT_NE(line.find("(default: " + shown + ")"), std::string::npos) << line;
}

TEST(settings_partial_input, defaults_flags_file_keys_and_help) {
  const settings defaults;
  EXPECT_EQ(defaults.max_partial_bytes, std::size_t{256} << 20);
  EXPECT_EQ(defaults.message_timeout, 30s);

  const settings s = loaded({"--max-partial-bytes", "64m", "--message-timeout", "2s"});
  EXPECT_EQ(s.max_partial_bytes, std::size_t{64} << 20);
  EXPECT_EQ(s.message_timeout, 2s);

  settings from_file;
  EXPECT_EQ(apply_json(from_file, R"({"max-partial-bytes": 4096, "message-timeout": "750ms"})"),
            "");
  EXPECT_EQ(from_file.max_partial_bytes, 4096u);
  EXPECT_EQ(from_file.message_timeout, 750ms);

  expect_error({"--max-partial-bytes", "1023"}, {"--max-partial-bytes", "1023"});
  expect_error({"--max-partial-bytes", "lots"}, {"--max-partial-bytes", "lots"});
  expect_error({"--message-timeout", "0"}, {"--message-timeout", "0"});
  expect_error({"--message-timeout", "10x"}, {"--message-timeout", "10x"});

  expect_listed_once("max-partial-bytes", "SIZE", "256m");
  expect_listed_once("message-timeout", "DURATION", "30s");
}

TEST(settings_client_limits, defaults_flags_file_keys_and_help) {
  const settings defaults;
  EXPECT_EQ(defaults.max_connections_per_ip, 20000u);
  EXPECT_EQ(defaults.max_new_rooms_per_minute, 1200u);
  EXPECT_EQ(defaults.max_messages_per_second, 100000u);

  const settings s = loaded({"--max-connections-per-ip", "7", "--max-new-rooms-per-minute", "30",
                             "--max-messages-per-second", "500"});
  EXPECT_EQ(s.max_connections_per_ip, 7u);
  EXPECT_EQ(s.max_new_rooms_per_minute, 30u);
  EXPECT_EQ(s.max_messages_per_second, 500u);

  settings from_file;
  EXPECT_EQ(apply_json(from_file, R"({"max-connections-per-ip": 3, "max-new-rooms-per-minute": "4",
                                      "max-messages-per-second": 5})"),
            "");
  EXPECT_EQ(from_file.max_connections_per_ip, 3u);
  EXPECT_EQ(from_file.max_new_rooms_per_minute, 4u);
  EXPECT_EQ(from_file.max_messages_per_second, 5u);

  for (const char* flag :
       {"--max-connections-per-ip", "--max-new-rooms-per-minute", "--max-messages-per-second"}) {
    expect_error({flag, "0"}, {flag, "0"});
    expect_error({flag, "-1"}, {flag, "-1"});
    expect_error({flag, "5000000000"}, {flag, "5000000000"});
  }

  expect_listed_once("max-connections-per-ip", "N", "20000");
  expect_listed_once("max-new-rooms-per-minute", "N", "1200");
  expect_listed_once("max-messages-per-second", "N", "100000");
}

// -- the example configurations in config/ --

TEST(settings_examples, single_node_example_holds_every_default) {
  const auto path = example("driftd.json");
  const auto text = read_text(path);
  for (const auto& name : setting_names) {
    EXPECT_NE(text.find("\"" + name + "\":"), std::string::npos) << name << " missing in " << path;
  }
  const auto r = load_args({"--config", path});
  ASSERT_TRUE(r.values) << r.message;
  expect_same(*r.values, settings{});
}

TEST(settings_examples, three_node_cluster_examples_agree) {
  std::vector<settings> nodes;
  for (const char* name : {"cluster-a.json", "cluster-b.json", "cluster-c.json"}) {
    const auto r = load_args({"--config", example(name)});
    ASSERT_TRUE(r.values) << name << ": " << r.message;
    nodes.push_back(*r.values);
  }
  const std::vector<std::string> seeds = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
  const char* names[] = {"a", "b", "c"};
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_EQ(nodes[i].port, 8081 + i);
    EXPECT_EQ(nodes[i].cluster_port, 7001 + i);
    EXPECT_EQ(nodes[i].node_name, names[i]);
    EXPECT_EQ(nodes[i].seeds, seeds);
    EXPECT_FALSE(nodes[i].secret.empty());
    EXPECT_EQ(nodes[i].secret, nodes[0].secret);
    EXPECT_EQ(nodes[i].cluster_name, nodes[0].cluster_name);
  }
}

TEST(settings_examples, flags_override_an_example_file) {
  const settings s = loaded({"--port", "0", "--config", example("cluster-b.json")});
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.node_name, "b");
}

}  // namespace
}  // namespace driftd::config
