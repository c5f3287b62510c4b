#include "net/auth.hpp"

#include <gtest/gtest.h>

namespace driftd::net {
namespace {

TEST(BearerTokenTest, TakesTheTokenOfABearerHeader) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer abc"), "abc") << "the scheme is case-insensitive";
  EXPECT_EQ(bearer_token("BEARER   abc  "), "abc") << "spaces around the token";
}

TEST(BearerTokenTest, AnythingElseHasNoToken) {
  EXPECT_EQ(bearer_token(""), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
  EXPECT_EQ(bearer_token("Bearer "), "");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearerabc"), "");
  EXPECT_EQ(bearer_token("abc"), "");
}

TEST(BearerTokensTest, WithoutTokensTheCheckIsOffAndAcceptsNothing) {
  const bearer_tokens none;
  EXPECT_FALSE(none.enabled());
  EXPECT_FALSE(none.accepts("Bearer x"));
  const bearer_tokens empty_list{std::vector<std::string>{}};
  EXPECT_FALSE(empty_list.enabled());
}

TEST(BearerTokensTest, AcceptsEachConfiguredTokenAndNothingNearIt) {
  const bearer_tokens keys{{"first-key", "second-key"}};
  EXPECT_TRUE(keys.enabled());
  EXPECT_TRUE(keys.accepts("Bearer first-key"));
  EXPECT_TRUE(keys.accepts("Bearer second-key"));
  EXPECT_TRUE(keys.accepts("bearer second-key"));
  EXPECT_FALSE(keys.accepts("Bearer first-ke"));
  EXPECT_FALSE(keys.accepts("Bearer first-keyy"));
  EXPECT_FALSE(keys.accepts("Bearer FIRST-KEY")) << "tokens are case-sensitive";
  EXPECT_FALSE(keys.accepts("Basic first-key"));
  EXPECT_FALSE(keys.accepts("first-key"));
  EXPECT_FALSE(keys.accepts("Bearer "));
  EXPECT_FALSE(keys.accepts(""));
}

TEST(BearerTokensTest, AnEmptyConfiguredTokenNeverMatchesAMissingOne) {
  const bearer_tokens keys{{""}};
  EXPECT_FALSE(keys.accepts(""));
  EXPECT_FALSE(keys.accepts("Bearer "));
}

}  // namespace
}  // namespace driftd::net
