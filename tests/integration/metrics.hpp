#pragma once
// Reading GET /metrics in tests: the samples of the Prometheus text format by name and
// labels, and `promtool check metrics` over a scrape (skipped when promtool is missing).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/client.hpp"

namespace driftd::integration {

using labels = std::map<std::string, std::string>;

/// One sample line: name{label="value",...} number.
struct sample {
  std::string name;
  labels tags;
  double value = 0;
};

/// Every sample of a scrape; comment lines are skipped. Fails on a line it cannot read.
inline std::vector<sample> parse_samples(const std::string& text) {
  std::vector<sample> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          fail("unreadable metrics line: " + line);
        }
        const std::string name = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.tags[name] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    const std::string number = line.substr(i);
    char* end = nullptr;
    s.value = std::strtod(number.c_str(), &end);
    if (end == number.c_str()) fail("unreadable metrics value: " + line);
    out.push_back(std::move(s));
  }
  return out;
}

/// A scrape, read.
class scrape {
 public:
  explicit scrape(std::string text) : text_(std::move(text)), samples_(parse_samples(text_)) {}

  /// The value of the sample with exactly these labels; fails when there is none.
  double value(const std::string& name, const labels& tags = {}) const {
    if (auto v = find(name, tags)) return *v;
    std::string shown;
    for (const auto& [k, v] : tags)
      shown += k + "=" + v + " ";
    fail("no sample " + name + " {" + shown + "} in\n" + text_);
  }

  std::optional<double> find(const std::string& name, const labels& tags = {}) const {
    for (const auto& s : samples_) {
      if (s.name == name && s.tags == tags) return s.value;
    }
    return std::nullopt;
  }

  /// The sum over every sample named `name`, whatever its labels.
  double sum(const std::string& name) const {
    double total = 0;
    for (const auto& s : samples_) {
      if (s.name == name) total += s.value;
    }
    return total;
  }

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<sample> samples_;
};

/// GET /metrics on `port`.
inline scrape scrape_metrics(uint16_t port) {
  auto res = http_call(port, "GET", "/metrics");
  if (res.status != 200) fail("GET /metrics answered " + std::to_string(res.status));
  if (res.header("content-type") != "text/plain; version=0.0.4; charset=utf-8") {
    fail("GET /metrics has content type " + res.header("content-type"));
  }
  return scrape{res.body};
}

/// The path of promtool, or empty when it is not installed.
inline std::string promtool_path() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs{path ? path : "/usr/bin:/bin"};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/promtool";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

/// What `promtool check metrics` says about `text`: its exit status and output.
inline std::pair<int, std::string> promtool_check(const std::string& promtool,
                                                  const std::string& text) {
  char path[] = "/tmp/driftd-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) fail("mkstemp failed");
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written) fail("could not write the scrape to " + std::string{path});
  const std::string command = promtool + " check metrics < " + path + " 2>&1";
  std::FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) fail("could not run " + command);
  std::string output;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
    output.append(buf, n);
  const int status = ::pclose(p);
  ::unlink(path);
  return {status, output};
}

}  // namespace driftd::integration
