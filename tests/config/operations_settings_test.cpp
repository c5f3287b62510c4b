// The settings of operating a node: access (--api-key, --admin-token), --log-format and its
// JSON lines, --version, and the settings reference that docs/settings.md holds.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/logging.hpp"
#include "config/settings.hpp"

namespace driftd::config {
namespace {

load_result run(std::vector<std::string> args) {
  args.insert(args.begin(), "driftd");
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return load(static_cast<int>(argv.size()), argv.data());
}

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("DRIFTD_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return DRIFTD_TEST_SOURCE_DIR;
}

TEST(OperationsSettingsTest, AccessIsOffByDefault) {
  const auto r = run({});
  ASSERT_TRUE(r.values);
  EXPECT_TRUE(r.values->api_keys.empty());
  EXPECT_TRUE(r.values->admin_token.empty());
  EXPECT_EQ(r.values->log_format, "text");
}

TEST(OperationsSettingsTest, ApiKeysAreAListAndTheAdminTokenOneWord) {
  const auto r = run({"--api-key", "k1,k2", "--admin-token=t0ken"});
  ASSERT_TRUE(r.values) << r.message;
  EXPECT_EQ(r.values->api_keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(r.values->admin_token, "t0ken");
}

TEST(OperationsSettingsTest, ApiKeyFlagsAddUpAndReplaceTheFilesKeys) {
  const auto r = run({"--api-key", "k1", "--port", "9000", "--api-key=k2,k3", "--api-key", "k4"});
  ASSERT_TRUE(r.values) << r.message;
  EXPECT_EQ(r.values->api_keys, (std::vector<std::string>{"k1", "k2", "k3", "k4"}));
  const auto file = std::filesystem::temp_directory_path() / "driftd-api-keys-test.json";
  {
    std::ofstream out(file);
    out << R"({"api-key": ["from-file"], "admin-token": "file-token"})";
  }
  const auto from_file = run({"--config", file.string()});
  ASSERT_TRUE(from_file.values) << from_file.message;
  EXPECT_EQ(from_file.values->api_keys, (std::vector<std::string>{"from-file"}));
  EXPECT_EQ(from_file.values->admin_token, "file-token");
  const auto both = run({"--config", file.string(), "--api-key", "a", "--api-key", "b"});
  ASSERT_TRUE(both.values) << both.message;
  EXPECT_EQ(both.values->api_keys, (std::vector<std::string>{"a", "b"}));
  std::filesystem::remove(file);
}

TEST(OperationsSettingsTest, TokensWithSpacesOrControlCharactersAreRefused) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--api-key", "a b"}, {"--admin-token", "x\ty"}, {"--admin-token", "caf\xc3\xa9"}}) {
    const auto r = run(args);
    EXPECT_FALSE(r.values) << args[0];
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.message.find(args[0]), std::string::npos) << r.message;
  }
}

TEST(OperationsSettingsTest, LogFormatIsTextOrJson) {
  EXPECT_EQ(run({"--log-format", "json"}).values->log_format, "json");
  const auto bad = run({"--log-format", "xml"});
  EXPECT_FALSE(bad.values);
  EXPECT_NE(bad.message.find("is not one of text, json"), std::string::npos) << bad.message;
}

TEST(OperationsSettingsTest, VersionPrintsTheProjectVersionAndExitsZero) {
  const auto r = run({"--port", "9000", "--version"});
  EXPECT_FALSE(r.values);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.message, std::string{"driftd "} + version());
  EXPECT_FALSE(std::string{version()}.empty());
  EXPECT_EQ(run({"--version=1"}).exit_code, 2);
}

TEST(OperationsSettingsTest, TheReferenceNamesEveryFlagOfTheHelp) {
  const auto help = usage();
  const auto reference = settings_reference();
  // Every `--flag` that opens a line of --help is a row of the reference.
  std::size_t rows = 0;
  for (std::size_t at = help.find("\n  --"); at != std::string::npos;
       at = help.find("\n  --", at + 1)) {
    const std::size_t start = at + 3;
    std::size_t end = start;
    while (end < help.size() && help[end] != ' ' && help[end] != '\n' && help[end] != ',')
      ++end;
    const std::string flag = help.substr(start, end - start);
    if (flag == "--config" || flag == "--version" || flag == "--settings-reference") continue;
    EXPECT_NE(reference.find("| `" + flag + "` |"), std::string::npos) << flag;
    ++rows;
  }
  EXPECT_GT(rows, 30u);
  const auto r = run({"--settings-reference"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.message, reference);
}

TEST(OperationsSettingsTest, DocsSettingsMdIsWhatTheProgramPrints) {
  const auto path = source_dir() / "docs" / "settings.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing " << path;
  const std::string committed{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(committed, settings_reference() + "\n")
      << "docs/settings.md is stale: regenerate it with\n"
         "  build/driftd --settings-reference > docs/settings.md";
}

TEST(OperationsSettingsTest, TheSingleNodeExampleNamesEverySettingOfTheReference) {
  std::ifstream in(source_dir() / "config" / "driftd.json", std::ios::binary);
  ASSERT_TRUE(in);
  const std::string example{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto reference = settings_reference();
  std::size_t names = 0;
  for (std::size_t at = reference.find("| `--"); at != std::string::npos;
       at = reference.find("| `--", at + 1)) {
    const std::size_t start = at + 5;
    const std::string name = reference.substr(start, reference.find('`', start) - start);
    EXPECT_NE(example.find("\"" + name + "\":"), std::string::npos) << name;
    ++names;
  }
  EXPECT_GT(names, 30u);
}

TEST(JsonLogTest, ALineIsOneObjectWithTimeLevelLoggerMessageNodeAndRoom) {
  const auto t = std::chrono::system_clock::time_point{std::chrono::milliseconds{1714564800123}};
  const std::string room = "AbCdEfGhIjKlMnOpQrStUv";
  const auto line =
      json_log_line(t, "info", "actors", "room " + room + " handed over at seq 3", "node-a");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto doc = nlohmann::json::parse(line);
  EXPECT_EQ(doc.at("time"), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(doc.at("level"), "info");
  EXPECT_EQ(doc.at("logger"), "actors");
  EXPECT_EQ(doc.at("message"), "room " + room + " handed over at seq 3");
  EXPECT_EQ(doc.at("node"), "node-a");
  EXPECT_EQ(doc.at("room"), room);
}

TEST(JsonLogTest, NoRoomOrNodeWhenTheLineHasNone) {
  const auto doc = nlohmann::json::parse(json_log_line(
      std::chrono::system_clock::time_point{}, "warn", "net", "room unavailable; chatroom x", ""));
  EXPECT_FALSE(doc.contains("room"));
  EXPECT_FALSE(doc.contains("node"));
  EXPECT_EQ(doc.at("time"), "1970-01-01T00:00:00.000Z");
}

TEST(JsonLogTest, BytesThatAreNotUtf8DoNotBreakTheLine) {
  const auto line =
      json_log_line(std::chrono::system_clock::time_point{}, "debug", "net", "bad \xff input", "");
  const auto doc = nlohmann::json::parse(line);
  EXPECT_EQ(doc.at("message"), "bad \xef\xbf\xbd input");
}

TEST(JsonLogTest, SetupRefusesAnUnknownFormat) {
  EXPECT_FALSE(setup_logging("info", "xml"));
  EXPECT_TRUE(setup_logging("info", "text"));
}

}  // namespace
}  // namespace driftd::config
