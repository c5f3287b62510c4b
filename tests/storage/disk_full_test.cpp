// A full disk: writes fail with the cause, the store keeps going, and recovers by itself once
// space returns. Needs root, for a tiny tmpfs of its own.

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "storage/rocks_store.hpp"
#include "tests/storage/support.hpp"

namespace driftd::storage::test {
namespace {

namespace fs = std::filesystem;

// Mounts a tmpfs of `size` on `dir` (which it creates) and unmounts it on destruction,
// whatever the test did. Touches no other mount.
class tmpfs_mount {
 public:
  tmpfs_mount(const fs::path& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir_);
    const std::string options = "size=" + size + ",mode=0700";
    if (mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~tmpfs_mount() {
    if (mounted_ && umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
  }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

bool fill_file(const fs::path& p, std::size_t bytes) {
  std::ofstream out{p, std::ios::binary};
  const std::string block(64 * 1024, 'f');
  for (std::size_t done = 0; done < bytes; done += block.size())
    out << block;
  out.flush();
  return static_cast<bool>(out);
}

// Bytes still free on the file system of `dir`.
uint64_t free_bytes(const fs::path& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Values that compress well: once space returns, the memtable flushed to an SST takes far
// less room than the WAL it replaces.
std::string value_of(int i) {
  return std::string(16 * 1024, static_cast<char>('a' + i % 26));
}

TEST(DiskFull, WriteFailsWithTheCauseAndTheStoreRecovers) {
  if (getuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  temp_dir tmp;
  tmpfs_mount mnt{tmp.path() / "mnt", "4m"};
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << mnt.error();
  const fs::path filler = tmp.path() / "mnt" / "filler";
  ASSERT_TRUE(fill_file(filler, 1u << 20));

  auto s = open_or_fail(config_in((tmp.path() / "mnt" / "db").string()));
  ASSERT_NE(s, nullptr);

  int acknowledged = 0;
  std::string error;
  for (int i = 0; i < 1000 && error.empty(); ++i) {
    error =
        write_and_wait(*s, put_write("room-" + std::to_string(i), "k", {entry(1, value_of(i))}, 1));
    if (error.empty()) ++acknowledged;
  }
  ASSERT_FALSE(error.empty()) << "the disk never filled";
  EXPECT_GT(acknowledged, 10);
  EXPECT_NE(error.find("storage write failed"), std::string::npos) << error;
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  auto stats = s->stats();
  EXPECT_NE(stats.failure.find("No space left on device"), std::string::npos) << stats.failure;
  EXPECT_GE(stats.write_errors, 1u);

  // Still full: still failing, nothing hangs.
  EXPECT_NE(write_and_wait(*s, put_write("again", "k", {entry(1, value_of(0))}, 1)), "");
  // Reads keep working meanwhile.
  EXPECT_TRUE(load_and_wait(*s, "room-0").record.exists);

  fs::remove(filler);
  EXPECT_EQ(write_and_wait(*s, put_write("after", "k", {entry(1, "small")}, 1)), "");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(write_and_wait(
                  *s, put_write("after-" + std::to_string(i), "k", {entry(1, value_of(i))}, 1)),
              "");
  }
  stats = s->stats();
  EXPECT_EQ(stats.failure, "");
  // Everything acknowledged before the failure is still there.
  for (int i = 0; i < acknowledged; ++i) {
    const auto got = load_and_wait(*s, "room-" + std::to_string(i));
    ASSERT_EQ(got.error, "");
    ASSERT_TRUE(got.record.exists) << i;
    ASSERT_EQ(got.record.streams.at(0).second.at(0).value, value_of(i));
  }
  EXPECT_TRUE(load_and_wait(*s, "after").record.exists);

  // And after a restart too.
  s.reset();
  s = open_or_fail(config_in((tmp.path() / "mnt" / "db").string()));
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(load_and_wait(*s, "room-" + std::to_string(acknowledged - 1)).record.exists);
  EXPECT_TRUE(load_and_wait(*s, "after-4").record.exists);
  s.reset();
}

// The first write after an open goes to an empty memtable: RocksDB's Resume would keep the
// WAL writer that failed, so the store reopens the database instead.
TEST(DiskFull, FirstWriteAfterOpenFailingRecovers) {
  if (getuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  temp_dir tmp;
  const fs::path root = tmp.path() / "mnt";
  tmpfs_mount mnt{root, "4m"};
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << mnt.error();
  const auto cfg = config_in((root / "db").string());
  {
    auto s = open_or_fail(cfg);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(write_and_wait(*s, put_write("before", "k", {entry(1, "v")}, 1)), "");
  }
  auto s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  const fs::path filler = root / "filler";
  const uint64_t free = free_bytes(root);
  ASSERT_GT(free, 64u * 1024);
  ASSERT_TRUE(fill_file(filler, free - 16 * 1024) || free_bytes(root) < 64 * 1024);

  const auto error = write_and_wait(
      *s,
      put_write("big", "k", {entry(1, value_of(1) + value_of(2) + value_of(3) + value_of(4))}, 1));
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  EXPECT_NE(write_and_wait(*s, put_write("again", "k", {entry(1, value_of(5))}, 1)), "");

  fs::remove(filler);
  EXPECT_EQ(write_and_wait(*s, put_write("after", "k", {entry(1, value_of(6))}, 1)), "");
  EXPECT_EQ(write_and_wait(*s, put_write("after2", "k", {entry(1, value_of(7))}, 1)), "");
  EXPECT_EQ(s->stats().failure, "");
  EXPECT_TRUE(load_and_wait(*s, "before").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "after").record.exists);
  s.reset();
  s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(load_and_wait(*s, "after2").record.exists);
  s.reset();
}

}  // namespace
}  // namespace driftd::storage::test
