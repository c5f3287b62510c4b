#pragma once

#include <string>

#include "cluster/messages.hpp"

namespace driftd::cluster {

/// A member's proof that it knows the cluster's secret: HMAC-SHA256 over the cluster name
/// and the member's identity, hex. Pure; thread-safe.
std::string membership_proof(const std::string& secret, const std::string& cluster_name,
                             const member_addr& who);

/// Compares a received proof with the expected one in constant time.
bool proof_matches(const std::string& secret, const std::string& cluster_name,
                   const member_addr& who, const std::string& proof);

}  // namespace driftd::cluster
