#include "protocol/utf8.hpp"

#include <string>

#include <gtest/gtest.h>

namespace driftd::protocol {
namespace {

TEST(ValidUtf8, AcceptsEmptyAndAscii) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("hello, world"));
  EXPECT_TRUE(valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(valid_utf8("\x7f"));
}

TEST(ValidUtf8, AcceptsEveryEncodingLengthAtItsBoundaries) {
  EXPECT_TRUE(valid_utf8("\xc2\x80"));          // U+0080
  EXPECT_TRUE(valid_utf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(valid_utf8("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(valid_utf8("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_TRUE(valid_utf8("\xee\x80\x80"));      // U+E000
  EXPECT_TRUE(valid_utf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(valid_utf8("\xf0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(valid_utf8("gr\xc3\xbc\xc3\x9f \xe6\xb0\xb4 \xf0\x9f\x98\x80"));
}

TEST(ValidUtf8, RejectsOverlongForms) {
  EXPECT_FALSE(valid_utf8("\xc0\x80"));
  EXPECT_FALSE(valid_utf8("\xc1\xbf"));
  EXPECT_FALSE(valid_utf8("\xe0\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xe0\x9f\xbf"));
  EXPECT_FALSE(valid_utf8("\xf0\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xf0\x8f\xbf\xbf"));
}

TEST(ValidUtf8, RejectsSurrogatesAndCodePointsAboveTheMaximum) {
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));              // U+D800
  EXPECT_FALSE(valid_utf8("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 surrogate pair
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xfe"));
}

TEST(ValidUtf8, RejectsStrayAndMissingContinuationBytes) {
  EXPECT_FALSE(valid_utf8("\x80"));
  EXPECT_FALSE(valid_utf8("a\xbf"));
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_FALSE(valid_utf8("\xc3x"));
  EXPECT_FALSE(valid_utf8("\xe6\xb0"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f\x98"));
  EXPECT_FALSE(valid_utf8("\xf0\x9f\x98x"));
  EXPECT_FALSE(valid_utf8("\xe6\xb0\xb4\xb4"));
}

TEST(ValidUtf8, FindsAnInvalidByteAtEveryOffsetAfterAsciiRuns) {
  // The validator skips ASCII eight bytes at a time; a bad byte must be caught at any
  // alignment, and a truncated sequence at the very end too.
  for (std::size_t prefix = 0; prefix < 24; ++prefix) {
    const std::string ascii(prefix, 'a');
    EXPECT_TRUE(valid_utf8(ascii + "\xc3\xbc" + ascii)) << prefix;
    EXPECT_FALSE(valid_utf8(ascii + "\xff" + ascii)) << prefix;
    EXPECT_FALSE(valid_utf8(ascii + "\xc3")) << prefix;
    EXPECT_FALSE(valid_utf8(ascii + "\xed\xa0\x80" + ascii)) << prefix;
  }
}

// --- utf8_prefix -------------------------------------------------------------------------

TEST(Utf8Prefix, KeepsTextThatFits) {
  EXPECT_EQ(utf8_prefix("", 0), "");
  EXPECT_EQ(utf8_prefix("abc", 3), "abc");
  EXPECT_EQ(utf8_prefix("abc", 100), "abc");
  EXPECT_EQ(utf8_prefix("\xe6\xb0\xb4", 3), "\xe6\xb0\xb4");
}

TEST(Utf8Prefix, CutsAsciiAtTheLimit) {
  EXPECT_EQ(utf8_prefix("abcdef", 4), "abcd");
  EXPECT_EQ(utf8_prefix("abcdef", 0), "");
}

TEST(Utf8Prefix, BacksUpToTheStartOfASplitCharacter) {
  // "a" then U+6C34 (3 bytes) then U+1F600 (4 bytes).
  const std::string text = "a\xe6\xb0\xb4\xf0\x9f\x98\x80";
  EXPECT_EQ(utf8_prefix(text, 1), "a");
  EXPECT_EQ(utf8_prefix(text, 2), "a");
  EXPECT_EQ(utf8_prefix(text, 3), "a");
  EXPECT_EQ(utf8_prefix(text, 4), "a\xe6\xb0\xb4");
  EXPECT_EQ(utf8_prefix(text, 5), "a\xe6\xb0\xb4");
  EXPECT_EQ(utf8_prefix(text, 7), "a\xe6\xb0\xb4");
  EXPECT_EQ(utf8_prefix(text, 8), text);
}

TEST(Utf8Prefix, EveryPrefixOfValidTextIsValidAndAsLongAsPossible) {
  const std::string text = "x\xc3\xbc\xe6\xb0\xb4y\xf0\x9f\x98\x80\xc2\x80z";
  for (std::size_t limit = 0; limit <= text.size() + 1; ++limit) {
    const std::string_view cut = utf8_prefix(text, limit);
    EXPECT_TRUE(valid_utf8(cut)) << limit;
    EXPECT_LE(cut.size(), limit);
    EXPECT_EQ(cut, std::string_view(text).substr(0, cut.size())) << limit;
    // One byte more than the cut (within the limit) would end inside a character.
    if (cut.size() < text.size() && cut.size() < limit) {
      EXPECT_FALSE(valid_utf8(std::string_view(text).substr(0, cut.size() + 1))) << limit;
    }
  }
}

TEST(Utf8Prefix, PointsIntoItsInput) {
  const std::string text = "hello";
  EXPECT_EQ(utf8_prefix(text, 2).data(), text.data());
}

}  // namespace
}  // namespace driftd::protocol
