#pragma once
// Which member owns a room: rendezvous (highest random weight) hashing. Pure logic.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace driftd::cluster {

/// The weight of `member` for `room`: a 64-bit hash of both, the same on every node and
/// every build.
uint64_t rendezvous_weight(std::string_view member, std::string_view room);

/// Indexes of `members` from the room's owner (highest weight) down; ties, which need a hash
/// collision, go to the smaller name. Removing a member changes the owner only of the rooms
/// it owned, and those go to their second-ranked member; adding one moves to it only the
/// rooms it now ranks first for.
std::vector<std::size_t> rank(const std::vector<std::string>& members, std::string_view room);

}  // namespace driftd::cluster
