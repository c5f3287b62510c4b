#pragma once

#include "protocol/value.hpp"

namespace driftd::actors {

/// What a connection asked for when it connected (the `cbor`, `debug`, `subscribe=all`
/// query flags).
struct conn_flags {
  protocol::wire_format format = protocol::wire_format::json;
  bool debug = false;
  bool all = false;
};

}  // namespace driftd::actors
