#include "protocol/room_id.hpp"

#include <string>
#include <unordered_set>

#include <gtest/gtest.h>

namespace driftd::protocol {
namespace {

const room_ids ids{"cluster-secret"};

bool in_alphabet(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

TEST(RoomIds, GeneratesLowercaseBase32IdsOfFixedLength) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = ids.generate();
    ASSERT_EQ(id.size(), room_ids::id_length);
    for (const char c : id)
      ASSERT_TRUE(in_alphabet(c)) << id;
  }
}

TEST(RoomIds, AcceptsTheIdsItGenerates) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = ids.generate();
    EXPECT_TRUE(ids.valid(id)) << id;
  }
}

TEST(RoomIds, AnotherNodeWithTheSameSecretAcceptsTheId) {
  const room_ids other{"cluster-secret"};
  EXPECT_TRUE(other.valid(ids.generate()));
}

TEST(RoomIds, RejectsIdsIssuedUnderAnotherSecret) {
  const room_ids other{"other-secret"};
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(ids.valid(other.generate()));
}

TEST(RoomIds, MatchesTheDocumentedFormat) {
  // 16 bytes 00..0f followed by the first 8 bytes of HMAC-SHA256("cluster-secret", them),
  // RFC 4648 base32, lowercase, unpadded; computed independently with Python's hmac/base64.
  EXPECT_TRUE(ids.valid("aaaqeayeaudaocajbifqydiob5z7acxoqob3ati"));
}

TEST(RoomIds, RejectsEveryOneCharacterChange) {
  const std::string id = ids.generate();
  for (std::size_t i = 0; i < id.size(); ++i) {
    std::string tampered = id;
    tampered[i] = id[i] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(ids.valid(tampered)) << "position " << i;
  }
}

TEST(RoomIds, RejectsNonZeroPaddingBitsInTheLastCharacter) {
  // The last character holds two data bits and three zero bits; another spelling of the same
  // bytes must not pass.
  std::string id = "aaaqeayeaudaocajbifqydiob5z7acxoqob3ati";
  id.back() = 'j';  // 'i' + 1: same data bits, a padding bit set
  EXPECT_FALSE(ids.valid(id));
}

TEST(RoomIds, RejectsWrongLength) {
  const std::string id = ids.generate();
  EXPECT_FALSE(ids.valid(""));
  EXPECT_FALSE(ids.valid(id.substr(0, id.size() - 1)));
  EXPECT_FALSE(ids.valid(id + "a"));
  EXPECT_FALSE(ids.valid(id + id));
}

TEST(RoomIds, RejectsCharactersOutsideTheAlphabet) {
  const std::string id = ids.generate();
  std::string upper = id;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(ids.valid(upper));
  for (const char bad : {'/', '.', '%', '0', '1', '8', '9', '=', 'A', '\0', '\xc3'}) {
    std::string tampered = id;
    tampered[5] = bad;
    EXPECT_FALSE(ids.valid(tampered)) << static_cast<int>(bad);
  }
  EXPECT_FALSE(ids.valid("../../../../../../../../../../etc/passw"));
}

TEST(RoomIds, TenThousandIdsAreDistinct) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10000; ++i)
    ASSERT_TRUE(seen.insert(ids.generate()).second);
}

TEST(RandomSecret, IsThirtyTwoBytesOfHex) {
  const std::string s = random_secret();
  ASSERT_EQ(s.size(), 64u);
  for (const char c : s)
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << s;
  EXPECT_NE(random_secret(), s);
}

TEST(RandomSecret, WorksAsASecret) {
  const room_ids fresh{random_secret()};
  EXPECT_TRUE(fresh.valid(fresh.generate()));
  EXPECT_FALSE(ids.valid(fresh.generate()));
}

TEST(RoomIds, AnIdSaysWhenItWasIssuedAndTheTimeIsSigned) {
  const int64_t when = 1796083200123;  // 2026-12-01, in ms
  const std::string id = ids.generate(when);
  EXPECT_EQ(room_ids::issued_ms(id), when);
  EXPECT_TRUE(ids.valid(id));
  // Changing the time's characters breaks the tag.
  for (std::size_t at = 26; at < 36; ++at) {
    std::string forged = id;
    forged[at] = forged[at] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(ids.valid(forged)) << at;
  }
}

TEST(RoomIds, IdsOfTheEarlierUntimedFormStayValid) {
  // Issued by an earlier release of driftd under this secret: 16 random bytes and a tag.
  const room_ids earlier{"room-id-test-secret"};
  const std::string old_id = "5oiinw245sjihy5vlafh2cs2cljejj26zzzdyhq";
  ASSERT_EQ(old_id.size(), room_ids::untimed_id_length);
  EXPECT_TRUE(earlier.valid(old_id));
  EXPECT_FALSE(ids.valid(old_id));
  EXPECT_EQ(room_ids::issued_ms(old_id), -1);
  std::string forged = old_id;
  forged[3] = forged[3] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(earlier.valid(forged));
}

}  // namespace
}  // namespace driftd::protocol
