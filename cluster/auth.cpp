#include "cluster/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace driftd::cluster {

std::string membership_proof(const std::string& secret, const std::string& cluster_name,
                             const member_addr& who) {
  // Every field is length-prefixed, so that no two identities share a message.
  std::string message;
  for (const std::string* part : {&cluster_name, &who.name, &who.cluster, &who.http}) {
    message += std::to_string(part->size());
    message += ':';
    message += *part;
  }
  message += std::to_string(who.incarnation);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 0xF];
  }
  return out;
}

bool proof_matches(const std::string& secret, const std::string& cluster_name,
                   const member_addr& who, const std::string& proof) {
  auto expected = membership_proof(secret, cluster_name, who);
  return proof.size() == expected.size() &&
         CRYPTO_memcmp(proof.data(), expected.data(), proof.size()) == 0;
}

}  // namespace driftd::cluster
