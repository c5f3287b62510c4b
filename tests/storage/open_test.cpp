// Opening a store: what is created, and what is refused (a node never starts empty over
// existing data, nor shares its folder).

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/rocks_store.hpp"
#include "tests/storage/support.hpp"

extern char** environ;

namespace driftd::storage::test {
namespace {

namespace fs = std::filesystem;

std::string refusal(const store_config& cfg) {
  std::string error;
  auto s = rocks_store::open(cfg, error);
  EXPECT_EQ(s, nullptr) << "opened, but should have been refused";
  return error;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator{dir})
    names.insert(e.path().filename().string());
  return names;
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out << content;
}

TEST(OpenStore, CreatesMissingFolders) {
  temp_dir tmp;
  const auto dir = tmp.sub("a/b/db");
  {
    auto s = open_or_fail(config_in(dir));
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(write_and_wait(*s, put_write("r", "k", {entry(1, "v")}, 1)), "");
  }
  EXPECT_TRUE(fs::exists(fs::path{dir} / "CURRENT"));
  // And opens it again as its own.
  auto s = open_or_fail(config_in(dir));
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(load_and_wait(*s, "r").record.exists);
}

TEST(OpenStore, EmptyExistingFolderIsFine) {
  temp_dir tmp;
  fs::create_directories(tmp.sub("db"));
  auto s = open_or_fail(config_in(tmp.sub("db")));
  EXPECT_NE(s, nullptr);
}

TEST(OpenStore, SecondStoreOnTheFolderIsRefused) {
  temp_dir tmp;
  const auto cfg = config_in(tmp.sub("db"));
  auto first = open_or_fail(cfg);
  ASSERT_NE(first, nullptr);
  const auto error = refusal(cfg);
  EXPECT_NE(error.find(cfg.dir), std::string::npos) << error;
  EXPECT_NE(error.find("is in use by another driftd process"), std::string::npos) << error;
  // The first one is unharmed.
  EXPECT_EQ(write_and_wait(*first, put_write("r", "k", {entry(1, "v")}, 1)), "");
}

// The child side of SecondProcessIsRefused: holds the store open until its stdin closes.
TEST(OpenStoreChild, HoldsFolderOpen) {
  const char* dir = std::getenv("DRIFTD_STORAGE_HOLD_DIR");
  if (dir == nullptr) GTEST_SKIP() << "runs only as the child of SecondProcessIsRefused";
  std::string error;
  auto s = rocks_store::open(config_in(dir), error);
  std::printf("%s\n", s ? "open" : error.c_str());
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
}

TEST(OpenStore, SecondProcessIsRefused) {
  temp_dir tmp;
  const auto cfg = config_in(tmp.sub("db"));
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  posix_spawn_file_actions_addclose(&actions, from_child[0]);
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=OpenStoreChild.HoldsFolderOpen";
  std::string env_dir = "DRIFTD_STORAGE_HOLD_DIR=" + cfg.dir;
  std::vector<char*> argv = {self.data(), filter.data(), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e)
    envp.push_back(*e);
  envp.push_back(env_dir.data());
  envp.push_back(nullptr);
  pid_t child = -1;
  ASSERT_EQ(posix_spawn(&child, self.c_str(), &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  close(from_child[1]);

  // gtest prints its own lines first; wait for the child's verdict line.
  std::string out;
  char buf[512];
  bool opened = false;
  for (;;) {
    const ssize_t n = read(from_child[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find("\nopen\n") != std::string::npos) {
      opened = true;
      break;
    }
  }
  EXPECT_TRUE(opened) << out;
  if (opened) {
    const auto error = refusal(cfg);
    EXPECT_NE(error.find(cfg.dir + " is in use by another driftd process"), std::string::npos)
        << error;
  }
  close(to_child[1]);  // lets the child close its store and end
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(from_child[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Once it is gone, the folder is free again.
  auto s = open_or_fail(cfg);
  EXPECT_NE(s, nullptr);
}

TEST(OpenStore, FolderWithOtherFilesIsRefusedAndLeftAlone) {
  temp_dir tmp;
  const fs::path dir = tmp.sub("data");
  fs::create_directories(dir / "photos");
  write_file(dir / "notes.txt", "mine");
  const auto error = refusal(config_in(dir.string()));
  EXPECT_NE(error.find(dir.string()), std::string::npos) << error;
  EXPECT_NE(error.find("no driftd database"), std::string::npos) << error;
  EXPECT_EQ(names_in(dir), (std::set<std::string>{"notes.txt", "photos"}));
}

TEST(OpenStore, PathThatIsAFileIsRefused) {
  temp_dir tmp;
  write_file(tmp.path() / "file", "x");
  const auto error = refusal(config_in(tmp.sub("file")));
  EXPECT_NE(error.find(tmp.sub("file")), std::string::npos) << error;
}

TEST(OpenStore, RocksDbOfSomeoneElseIsRefused) {
  temp_dir tmp;
  const auto dir = tmp.sub("db");
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db{raw};
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions{}, "their", "data").ok());
  }
  const auto error = refusal(config_in(dir));
  EXPECT_NE(error.find("not driftd's"), std::string::npos) << error;
  // Their data is still there.
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options{}, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db{raw};
  std::string v;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions{}, "their", &v).ok());
  EXPECT_EQ(v, "data");
}

TEST(OpenStore, LaterFormatVersionIsRefused) {
  temp_dir tmp;
  const auto dir = tmp.sub("db");
  {
    auto s = open_or_fail(config_in(dir));
    ASSERT_NE(s, nullptr);
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options{}, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db{raw};
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions{}, std::string(1, '\0') + "format",
                        std::string("driftd") + '\x02')
                    .ok());
  }
  const auto error = refusal(config_in(dir));
  EXPECT_NE(error.find("format version 2"), std::string::npos) << error;
}

class CorruptStore : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = open_or_fail(config_in(dir_));
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(write_and_wait(*s, put_write("r", "k", {entry(1, "v")}, 1)), "");
  }

  fs::path manifest() const {
    for (const auto& e : fs::directory_iterator{dir_}) {
      if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) return e.path();
    }
    return {};
  }

  temp_dir tmp_;
  const std::string dir_ = tmp_.sub("db");
};

TEST_F(CorruptStore, DamagedCurrentIsRefused) {
  write_file(fs::path{dir_} / "CURRENT", "garbage");
  const auto error = refusal(config_in(dir_));
  EXPECT_NE(error.find(dir_ + " holds a database that cannot be opened"), std::string::npos)
      << error;
  EXPECT_NE(error.find("Corruption"), std::string::npos) << error;
}

TEST_F(CorruptStore, CurrentNamingAMissingManifestIsRefused) {
  write_file(fs::path{dir_} / "CURRENT", "MANIFEST-999999\n");
  const auto error = refusal(config_in(dir_));
  EXPECT_NE(error.find("cannot be opened"), std::string::npos) << error;
}

TEST_F(CorruptStore, DamagedManifestIsRefused) {
  const auto m = manifest();
  ASSERT_FALSE(m.empty());
  // Overwrite the records past the first block header with noise.
  const auto size = fs::file_size(m);
  std::fstream f{m, std::ios::in | std::ios::out | std::ios::binary};
  f.seekp(7);
  for (std::uintmax_t i = 7; i < size; ++i)
    f.put(static_cast<char>(0xa5 ^ (i * 31)));
  f.close();
  const auto error = refusal(config_in(dir_));
  EXPECT_NE(error.find("cannot be opened"), std::string::npos) << error;
  EXPECT_NE(error.find("Corruption"), std::string::npos) << error;
}

}  // namespace
}  // namespace driftd::storage::test
