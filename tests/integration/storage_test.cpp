// A node that keeps its rooms on disk, in process: rooms leave memory and come back with
// their streams, expire from disk, and a full disk is reported and survived.

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "client.hpp"

namespace driftd::integration {
namespace {

namespace fs = std::filesystem;

/// A fresh folder under /tmp, removed afterwards.
class temp_folder {
 public:
  temp_folder() {
    std::string pattern = "/tmp/driftd-storage-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_folder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

config::settings disk_settings(const std::string& dir) {
  auto s = test_settings();
  s.storage = "disk";
  s.data_dir = dir + "/data";
  return s;
}

json storage_stats(uint16_t port) {
  return stats(port).at("storage");
}

TEST(StorageTest, AnIdleRoomLeavesMemoryAndComesBackWithItsStreams) {
  temp_folder dir;
  auto s = disk_settings(dir.path());
  s.unload_after = 100ms;
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);
  {
    ws_client writer{port, room};
    writer.send(push_msg("k", "first"));
    writer.send(push_msg("k", "second"));
    writer.sync();
  }
  EXPECT_TRUE(eventually([&] { return storage_stats(port)["rooms_unloaded"] == 1; }, 5s));
  EXPECT_EQ(stats(port)["rooms"], 0);
  const auto loads = storage_stats(port)["rooms_loaded"].get<int>();
  ws_client reader{port, room};
  reader.send(get_msg("k"));
  EXPECT_EQ(reader.recv(), server_init("k", {{1, "first"}, {2, "second"}}));
  EXPECT_EQ(storage_stats(port)["rooms_loaded"], loads + 1);
  // It numbers on from its exact counter.
  reader.send(push_msg("k", "third"));
  EXPECT_EQ(reader.recv(), server_push("k", "third", 3));
}

TEST(StorageTest, AnExpiredRoomIsDeletedFromDiskAndNumbersAboveItsPast) {
  temp_folder dir;
  auto s = disk_settings(dir.path());
  s.unload_after = 50ms;
  s.room_ttl = std::chrono::seconds{1};
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);
  {
    ws_client writer{port, room};
    writer.send(push_msg("k", std::string(1000, 'x')));
    writer.sync();
  }
  EXPECT_TRUE(eventually([&] { return storage_stats(port)["rooms_expired"] == 1; }, 10s));
  auto init = http_send(port, room, get_msg("k")).doc();
  EXPECT_EQ(init, server_init("k"));
  // The id is older than the TTL by now: the room numbers above anything it can have used.
  const auto pushed = http_send(port, room, push_msg("k", "again"));
  EXPECT_EQ(pushed.status, 200u);
  ws_client reader{port, room};
  reader.send(get_msg("k"));
  const auto data = reader.recv().at("data");
  ASSERT_EQ(data.size(), 1u);
  EXPECT_GT(data[0].at("seq").get<uint64_t>(), uint64_t{1} << 40);
}

/// A tmpfs of `bytes` mounted on a folder for the test's own data; unmounted at the end.
class tiny_disk {
 public:
  tiny_disk(const std::string& dir, std::size_t bytes) : dir_(dir) {
    fs::create_directories(dir_);
    const std::string options = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~tiny_disk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

  /// Fills what is left with a file of zeros; true once a write failed for want of space.
  bool fill() {
    std::ofstream out{dir_ + "/filler", std::ios::binary};
    const std::string block(64 * 1024, '\0');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
    return true;
  }
  void free_space() { fs::remove(dir_ + "/filler"); }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(StorageTest, AFullDiskFailsPushesWithTheCauseAndTheNodeRecoversWhenSpaceReturns) {
  if (::getuid() != 0) GTEST_SKIP() << "mounting a small filesystem needs root";
  temp_folder dir;
  tiny_disk disk{dir.path() + "/disk", 8u << 20};
  ASSERT_TRUE(disk.mounted()) << "cannot mount a tmpfs";
  auto s = test_settings();
  s.storage = "disk";
  s.data_dir = dir.path() + "/disk/data";
  test_node node{s};
  const auto port = node.port();
  const std::string writes = new_room(port);
  const std::string relays = new_room(port);
  ws_client writer{port, writes};
  ws_client relayer{port, relays};
  writer.send(get_msg("k", nullptr));
  relayer.send(get_msg("r", nullptr));
  writer.send(push_msg("k", "before"));
  EXPECT_EQ(writer.recv(), server_push("k", "before", 1));
  relayer.send(push_msg("r", 1, "relay"));
  EXPECT_EQ(relayer.recv(), server_push("r", 1, 1));  // its seqs are written ahead

  disk.fill();
  writer.send(push_msg("k", std::string(64 * 1024, 'y')));
  const auto refused = writer.recv();
  const std::string why = error_text(refused);
  EXPECT_EQ(why.rfind("push not stored: ", 0), 0u) << why;
  EXPECT_NE(why.find("No space left on device"), std::string::npos) << why;
  EXPECT_EQ(http_call(port, "GET", "/healthz").status, 503u);
  EXPECT_EQ(http_call(port, "GET", "/healthz").doc().at("storage"), "failing");
  // The other room still relays (no write needed) and both answer reads.
  relayer.send(push_msg("r", 2, "relay"));
  EXPECT_EQ(relayer.recv(), server_push("r", 2, 2));
  EXPECT_EQ(http_send(port, writes, get_msg("k")).doc(), server_init("k", {{1, "before"}}));
  EXPECT_FALSE(writer.closed());

  disk.free_space();
  // The room came back (its connection re-attached); the next push is stored and numbered
  // above the refused one.
  bool stored = false;
  for (int attempt = 0; attempt < 50 && !stored; ++attempt) {
    writer.send(push_msg("k", "after"));
    for (;;) {
      const auto got = writer.recv();
      const auto type = got.value("type", "");
      if (type == "init") continue;  // the connection caught up after the room came back
      stored = type == "push";
      if (stored) {
        EXPECT_EQ(got.at("value"), "after");
        EXPECT_GT(got.at("seq").get<uint64_t>(), 2u);
      }
      break;
    }
  }
  EXPECT_TRUE(stored) << "pushes still fail after space returned";
  EXPECT_TRUE(eventually([&] { return http_call(port, "GET", "/healthz").status == 200; }));
  const auto init = http_send(port, writes, get_msg("k")).doc();
  ASSERT_EQ(init.at("data").size(), 2u);
  EXPECT_EQ(init.at("data")[0], (json{{"seq", 1}, {"value", "before"}}));
  EXPECT_EQ(init.at("data")[1].at("value"), "after");
}

}  // namespace
}  // namespace driftd::integration
