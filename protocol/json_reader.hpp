#pragma once
// A strict JSON reader that builds protocol::value directly. Internal to the protocol
// library: use protocol::parse_json.
//
// Why not nlohmann's parser, when values are nlohmann::json anyway:
//   - speed: nlohmann's lexer and SAX layer cost a fifth of an I/O thread under load; this
//     reader builds values directly;
//   - the envelope needs no DOM: split_json_object checks a client message and hands out its
//     members as text, and a relayed value stays text (check_json) from client to client;
//   - untrusted input needs a depth limit, which nlohmann lacks, and errors that say where
//     the text stops being JSON.
// What it accepts, and the value it builds, are nlohmann's (RFC 8259): a number too large
// for a double is an error, one too small reads as zero of its sign. Two differences are on
// purpose: a leading byte order mark is refused (nlohmann skips it; RFC 8259 §8.1 allows
// either), and so is a text with a NUL byte (nlohmann takes it for the end of the input and
// ignores what follows). tests/fuzz/json_diff_fuzz.cpp holds the two readers to this.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/value.hpp"

namespace driftd::protocol::detail {

/// Parses one JSON text (RFC 8259) without recursion: an explicit stack holds the open
/// containers, at most `max_depth` of them. Errors name the byte (1-based) where the text
/// stops being JSON.
result<value> read_json(std::string_view text, std::size_t max_depth);

/// Checks one JSON text as read_json does, without building it. On failure `error` holds
/// read_json's message.
bool check_json(std::string_view text, std::size_t max_depth, std::string& error);

/// One member of a JSON object: its name (unescaped) and its value as it stands in the text.
struct json_member {
  std::string name;
  std::string_view text;
};

enum class split_status { object, not_object, invalid };

/// Checks `text` as read_json does, without building values, and when it is an object
/// lists its members in order (duplicates included) into `members`. The member texts point
/// into `text`; each is one JSON value, nested at most `max_depth - 1` deep. On `invalid`,
/// `error` holds read_json's message.
split_status split_json_object(std::string_view text, std::size_t max_depth,
                               std::vector<json_member>& members, std::string& error);

}  // namespace driftd::protocol::detail
