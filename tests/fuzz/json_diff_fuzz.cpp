// libFuzzer harness: our JSON reader against nlohmann's, on any bytes.
//
// "The same" means, for every input:
//   - both accept or both refuse, with three exceptions: a text nested deeper than our limit
//     (nlohmann has none: we must refuse it, nlohmann may accept it, but then its value must
//     nest deeper than the limit); a leading UTF-8 byte order mark (nlohmann skips it, we
//     refuse it; RFC 8259 §8.1 allows either); a NUL byte (nlohmann stops reading there, we
//     refuse the text: the readers are compared on what comes before it);
//   - accepted texts give the same value: the same type at every node, with integers and
//     floats told apart as nlohmann does (a number without fraction or exponent that fits
//     uint64 is unsigned, one that fits int64 and is negative is signed, everything else a
//     double: "-0" is the signed integer 0, "1.0" a double), doubles equal bit for bit (so
//     -0.0 is not 0.0), strings byte for byte, objects with the same keys (the last of
//     duplicate keys counts);
//   - our check-only mode (relayed values) accepts and refuses exactly what the building mode
//     does, with the same message, and so does the object splitter, whose members each read
//     back to the member nlohmann holds.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/json_reader.hpp"
#include "protocol/value.hpp"

namespace {

using driftd::protocol::value;
namespace detail = driftd::protocol::detail;

constexpr std::size_t max_depth = 16;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Recursive: both values are nested at most max_depth deep here.
bool same(const value& a, const value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case value::value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case value::value_t::array: {
      const auto& xs = *a.get_ptr<const value::array_t*>();
      const auto& ys = *b.get_ptr<const value::array_t*>();
      if (xs.size() != ys.size()) return false;
      for (std::size_t i = 0; i < xs.size(); ++i) {
        if (!same(xs[i], ys[i])) return false;
      }
      return true;
    }
    case value::value_t::object: {
      const auto& xs = *a.get_ptr<const value::object_t*>();
      const auto& ys = *b.get_ptr<const value::object_t*>();
      if (xs.size() != ys.size()) return false;
      for (auto x = xs.begin(), y = ys.begin(); x != xs.end(); ++x, ++y) {
        if (x->first != y->first || !same(x->second, y->second)) return false;
      }
      return true;
    }
    default:  // null, boolean, integers, string, binary
      return a == b;
  }
}

// How deep containers nest in `v` (a scalar is 0), without recursion: nlohmann's value may
// be as deep as the input is long.
std::size_t depth_of(const value& v) {
  std::size_t deepest = 0;
  std::vector<std::pair<const value*, std::size_t>> todo{{&v, 0}};
  while (!todo.empty()) {
    const auto [node, level] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, level + 1);
    for (const value& child : *node)
      todo.push_back({&child, level + 1});
  }
  return deepest;
}

bool is_depth_error(const std::string& message) {
  return message == "message nested deeper than " + std::to_string(max_depth) + " levels";
}

// Our reader's three modes on `text`: they agree with each other (checked here), and the
// building mode's result is returned.
driftd::protocol::result<value> read_all_modes(std::string_view text,
                                               std::vector<detail::json_member>& members,
                                               detail::split_status& split) {
  auto ours = detail::read_json(text, max_depth);
  std::string check_error;
  const bool checked = detail::check_json(text, max_depth, check_error);
  std::string split_error;
  split = detail::split_json_object(text, max_depth, members, split_error);
  check(checked == static_cast<bool>(ours));
  check((split == detail::split_status::invalid) == !ours);
  if (!ours) {
    check(check_error == ours.error());
    check(split_error == ours.error());
  }
  return ours;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<detail::json_member> members;
  detail::split_status split;

  // nlohmann's lexer takes a NUL byte for the end of its input. JSON has no NUL outside
  // strings and none raw inside, so we refuse any text with one, and compare the readers on
  // the text before it.
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    check(!read_all_modes(text, members, split));
    text = text.substr(0, nul);
  }
  auto ours = read_all_modes(text, members, split);

  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    check(!ours);
    return 0;
  }

  const value theirs = value::parse(text.begin(), text.end(), nullptr, false);
  if (!ours) {
    if (is_depth_error(ours.error())) {
      check(theirs.is_discarded() || depth_of(theirs) > max_depth);
    } else {
      check(theirs.is_discarded());
    }
    return 0;
  }
  check(!theirs.is_discarded());
  check(same(*ours, theirs));

  check((split == detail::split_status::object) == theirs.is_object());
  if (split == detail::split_status::object) {
    // The last member of each name is the one nlohmann keeps.
    std::size_t distinct = 0;
    for (std::size_t i = 0; i < members.size(); ++i) {
      bool last = true;
      for (std::size_t j = i + 1; j < members.size(); ++j) {
        if (members[j].name == members[i].name) last = false;
      }
      if (!last) continue;
      ++distinct;
      auto member = detail::read_json(members[i].text, max_depth - 1);
      check(static_cast<bool>(member));
      const auto it = theirs.find(members[i].name);
      check(it != theirs.end() && same(*member, *it));
    }
    check(distinct == theirs.size());
  }
  return 0;
}
