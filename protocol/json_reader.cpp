#include "protocol/json_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/utf8.hpp"

namespace driftd::protocol::detail {

namespace {

/// Thrown inside the reader only, to unwind to read_json with a message.
struct json_failure {
  std::string message;
};

/// The power of ten of the first non-zero digit of the JSON number [p, end), which has at
/// least one: 2 for 125, -3 for 0.00125, 2 for 1.25e2. A double holds every non-zero
/// magnitude from 10^-324 to 10^308, so the sign of this tells a number too large for a
/// double from one too small. Saturates long before int64_t would overflow.
int64_t decimal_order(const char* p, const char* end) {
  constexpr int64_t saturated = int64_t{1} << 50;
  if (*p == '-') ++p;
  int64_t order = 0;
  if (*p != '0') {
    // 12.5: the integer part's digits
    for (; p != end && *p >= '0' && *p <= '9'; ++p)
      ++order;
    --order;
    if (p != end && *p == '.') ++p;
    while (p != end && *p >= '0' && *p <= '9')
      ++p;
  } else {
    // 0.0125: one below the place of the first non-zero digit of the fraction
    ++p;
    if (p != end && *p == '.') ++p;
    order = -1;
    for (; p != end && *p == '0'; ++p)
      --order;
    while (p != end && *p >= '0' && *p <= '9')
      ++p;
  }
  if (p == end) return order;
  ++p;  // 'e' or 'E'
  bool negative = false;
  if (*p == '+' || *p == '-') negative = *p++ == '-';
  int64_t exponent = 0;
  for (; p != end; ++p)
    exponent = std::min(exponent * 10 + (*p - '0'), saturated);
  return negative ? order - exponent : order + exponent;
}

/// With `Build`, values are built as they are read; without, the text is only checked (no
/// allocation but for the container stack), and every `value&` it is given stays untouched.
template <bool Build>
class json_reader {
 public:
  json_reader(std::string_view text, std::size_t max_depth)
      : begin_(text.data()),
        p_(text.data()),
        end_(text.data() + text.size()),
        max_depth_(max_depth),
        stack_(stack_storage()) {
    stack_.clear();
  }

  value run() {
    value root;
    read_complete(root);
    skip_ws();
    if (p_ != end_) syntax();
    return root;
  }

  /// Splits a text that must be one object into its members, each checked to be JSON.
  /// Returns false, having checked the whole text, when it is JSON but not an object.
  bool split(std::vector<json_member>& members) {
    static_assert(!Build);
    members.clear();
    skip_ws();
    if (p_ == end_ || *p_ != '{') {
      run();
      return false;
    }
    ++p_;
    if (max_depth_ == 0) too_deep();
    stack_.push_back(frame{nullptr, true});  // the object itself: level 1
    for (bool first = true;; first = false) {
      skip_ws();
      if (p_ == end_) eof();
      if (*p_ == '}') {
        ++p_;
        break;
      }
      if (!first) {
        if (*p_ != ',') syntax();
        ++p_;
        skip_ws();
        if (p_ == end_) eof();
      }
      if (*p_ != '"') syntax();
      ++p_;
      json_member m;
      read_string(m.name);
      expect(':');
      skip_ws();
      const char* start = p_;
      value unused;
      read_complete(unused);
      m.text = std::string_view{start, static_cast<std::size_t>(p_ - start)};
      members.push_back(std::move(m));
    }
    skip_ws();
    if (p_ != end_) syntax();
    return true;
  }

 private:
  struct frame {
    value* container;
    bool object;
    bool first = true;  ///< no member read yet
  };

  /// Reads one value, containers and all.
  void read_complete(value& slot) {
    const std::size_t base = stack_.size();
    read_value(slot);
    while (stack_.size() > base) {
      // Reading a member may open a container, which pushes a frame: work on a copy.
      const frame top = stack_.back();
      skip_ws();
      if (p_ == end_) eof();
      if (*p_ == (top.object ? '}' : ']')) {
        ++p_;
        stack_.pop_back();
        continue;
      }
      if (top.first) {
        stack_.back().first = false;
      } else if (*p_ == ',') {
        ++p_;
      } else {
        syntax();
      }
      read_member(top);
    }
  }

  [[noreturn]] void too_deep() {
    throw json_failure{"message nested deeper than " + std::to_string(max_depth_) + " levels"};
  }

  [[noreturn]] void eof() { throw json_failure{"invalid JSON: unexpected end of input"}; }

  [[noreturn]] void syntax() {
    if (p_ >= end_) eof();
    throw json_failure{"invalid JSON: syntax error at byte " + std::to_string(p_ - begin_ + 1)};
  }

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  void expect(char c) {
    skip_ws();
    if (p_ == end_) eof();
    if (*p_ != c) syntax();
    ++p_;
  }

  /// The next element (arrays) or "key": value (objects) of `top`.
  void read_member(const frame& top) {
    if (!top.object) {
      if constexpr (Build) {
        auto& arr = *top.container->template get_ptr<value::array_t*>();
        arr.emplace_back();
        // Elements stay put while they are read: nothing is added to `arr` meanwhile.
        read_value(arr.back());
      } else {
        read_value(*top.container);
      }
      return;
    }
    skip_ws();
    if (p_ == end_) eof();
    if (*p_ != '"') syntax();
    ++p_;
    if constexpr (Build) {
      std::string key;
      read_string(key);
      expect(':');
      value& slot = (*top.container->template get_ptr<value::object_t*>())[std::move(key)];
      slot = nullptr;  // the last of duplicate keys wins
      read_value(slot);
    } else {
      thread_local std::string key;
      key.clear();
      read_string(key);
      expect(':');
      read_value(*top.container);
    }
  }

  /// Opens a container in `slot`; run() reads its members and closes it.
  void open(value& slot, bool object) {
    if (stack_.size() + 1 > max_depth_) too_deep();
    if constexpr (Build) slot = object ? value::object() : value::array();
    stack_.push_back(frame{&slot, object});
  }

  /// Reads one value into `slot`. Containers are opened here and closed by run().
  void read_value(value& slot) {
    skip_ws();
    if (p_ == end_) eof();
    switch (*p_) {
      case '{':
        ++p_;
        return open(slot, true);
      case '[':
        ++p_;
        return open(slot, false);
      case '"': {
        ++p_;
        if constexpr (Build) {
          std::string s;
          read_string(s);
          slot = std::move(s);
        } else {
          thread_local std::string s;
          s.clear();
          read_string(s);
        }
        return;
      }
      case 't':
        return literal("true", slot, true);
      case 'f':
        return literal("false", slot, false);
      case 'n':
        return literal("null", slot, nullptr);
      default:
        return read_number(slot);
    }
  }

  template <class T>
  void literal(std::string_view word, value& slot, T v) {
    for (char c : word) {
      if (p_ == end_) eof();
      if (*p_ != c) syntax();
      ++p_;
    }
    if constexpr (Build) slot = v;
  }

  void read_number(value& slot) {
    const char* start = p_;
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
      if (p_ == end_) eof();
    }
    if (*p_ < '0' || *p_ > '9') syntax();
    uint64_t magnitude = 0;
    bool overflow = false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
        const auto digit = static_cast<uint64_t>(*p_ - '0');
        if (magnitude > (UINT64_MAX - digit) / 10) overflow = true;
        magnitude = magnitude * 10 + digit;
        ++p_;
      }
    }
    bool fractional = false;
    if (p_ != end_ && *p_ == '.') {
      fractional = true;
      ++p_;
      if (p_ == end_) eof();
      if (*p_ < '0' || *p_ > '9') syntax();
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      fractional = true;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_) eof();
      if (*p_ < '0' || *p_ > '9') syntax();
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (!fractional && !overflow) {
      if (!negative) {
        if constexpr (Build) slot = magnitude;
        return;
      }
      if (magnitude <= uint64_t{1} << 63) {
        if constexpr (Build) slot = static_cast<int64_t>(0 - magnitude);
        return;
      }
    }
    // Fractions, exponents and integers beyond 64 bits are doubles, as JSON readers hold them.
    double d = 0;
    auto r = std::from_chars(start, p_, d);
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars says this of a value too large for a double and of a non-zero one that
      // rounds to zero alike. As in nlohmann (which uses strtod), the first is an error and
      // the second reads as zero of its sign; subnormals are in range.
      if (decimal_order(start, p_) >= 0) throw json_failure{"invalid JSON: number out of range"};
      d = negative ? -0.0 : 0.0;
    } else if (r.ec != std::errc{} || r.ptr != p_) {
      throw json_failure{"invalid JSON: number out of range"};
    }
    if constexpr (Build) slot = d;
  }

  /// Reads the rest of a string after its opening quote.
  void read_string(std::string& out) {
    for (;;) {
      // The plain run up to the next quote, escape or control character.
      const char* run = p_;
      while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
        ++p_;
      }
      if (!valid_utf8({run, static_cast<std::size_t>(p_ - run)})) bad_utf8(run);
      out.append(run, static_cast<std::size_t>(p_ - run));
      if (p_ == end_) eof();
      const char c = *p_;
      if (c == '"') {
        ++p_;
        return;
      }
      if (c != '\\') syntax();  // a raw control character
      ++p_;
      if (p_ == end_) eof();
      switch (*p_++) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u':
          unicode_escape(out);
          break;
        default:
          --p_;
          syntax();
      }
    }
  }

  [[noreturn]] void bad_utf8(const char* run) {
    // Find the first byte that breaks the run.
    const char* q = run;
    while (q < p_) {
      std::size_t len = 1;
      const auto b = static_cast<unsigned char>(*q);
      if (b >= 0xF0) {
        len = 4;
      } else if (b >= 0xE0) {
        len = 3;
      } else if (b >= 0xC0) {
        len = 2;
      }
      if (static_cast<std::size_t>(p_ - q) < len || !valid_utf8({q, len})) {
        break;
      }
      q += len;
    }
    throw json_failure{"invalid JSON: invalid UTF-8 at byte " + std::to_string(q - begin_ + 1)};
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      if (p_ == end_) eof();
      const char c = *p_;
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        syntax();
      }
      v = v * 16 + d;
      ++p_;
    }
    return v;
  }

  void unicode_escape(std::string& out) {
    uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) syntax();  // a low surrogate on its own
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one.
      if (p_ == end_) eof();
      if (*p_ != '\\') syntax();
      ++p_;
      if (p_ == end_) eof();
      if (*p_ != 'u') syntax();
      ++p_;
      const uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) syntax();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  /// One stack per thread, kept between texts: no reader calls another while it runs.
  static std::vector<frame>& stack_storage() {
    thread_local std::vector<frame> stack;
    return stack;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::size_t max_depth_;
  std::vector<frame>& stack_;
};

}  // namespace

result<value> read_json(std::string_view text, std::size_t max_depth) {
  try {
    return json_reader<true>{text, max_depth}.run();
  } catch (json_failure& f) {
    return parse_error{std::move(f.message)};
  }
}

bool check_json(std::string_view text, std::size_t max_depth, std::string& error) {
  try {
    json_reader<false>{text, max_depth}.run();
    return true;
  } catch (json_failure& f) {
    error = std::move(f.message);
    return false;
  }
}

split_status split_json_object(std::string_view text, std::size_t max_depth,
                               std::vector<json_member>& members, std::string& error) {
  try {
    return json_reader<false>{text, max_depth}.split(members) ? split_status::object
                                                              : split_status::not_object;
  } catch (json_failure& f) {
    error = std::move(f.message);
    return split_status::invalid;
  }
}

}  // namespace driftd::protocol::detail
