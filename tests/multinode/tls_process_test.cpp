// The client port's TLS in a real driftd process: SIGHUP rereads the certificate (new
// handshakes get it, open connections stay on theirs and keep receiving), a reload that
// fails changes nothing, and certificates that cannot be read stop the start with a nonzero
// exit and a message.

#include <csignal>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/tls_client.hpp"
#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

constexpr uint64_t first_serial = 1001;
constexpr uint64_t second_serial = 2002;

/// How often `what` appears in `text`.
std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

class TlsProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_.issue("driftd-one", first_serial, "server.pem", "server.key");
    port_ = free_port();
    node_.emplace("tls", port_, 0, pki_.path("node.log"));
    node_->start({"--port", std::to_string(port_), "--storage", "memory", "--log-level", "info",
                  "--tls-cert", pki_.path("server.pem"), "--tls-key", pki_.path("server.key")});
    wait_until(
        [&] {
          try {
            return https_call(port_, pki_.ca(), "GET", "/healthz").status == 200;
          } catch (const test_failure&) {
            return false;
          }
        },
        10s, "the node to answer over HTTPS");
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << file_tail(node_->log_path(), 40);
  }

  /// Sends SIGHUP and waits until the node logged one more line containing `outcome`.
  void hangup_and_wait_for(const std::string& outcome) {
    const std::size_t before = count_of(file_text(node_->log_path()), outcome);
    node_->signal(SIGHUP);
    wait_until([&] { return count_of(file_text(node_->log_path()), outcome) > before; }, 10s,
               "\"" + outcome + "\" in the log");
  }

  std::string new_room() {
    const auto res = https_call(port_, pki_.ca(), "POST", "/new");
    if (res.status != 200) fail("POST /new answered " + std::to_string(res.status));
    return res.doc().at("room").get<std::string>();
  }

  test_pki pki_;
  uint16_t port_ = 0;
  std::optional<node_process> node_;
};

TEST_F(TlsProcessTest, SighupServesTheNewCertificateAndOpenConnectionsStay) {
  const std::string room = new_room();
  wss_client subscriber{port_, pki_.ca(), room};
  subscriber.send(get_msg("k", nullptr));
  ASSERT_TRUE(subscriber.sync().empty());
  tls_socket kept_alive{port_, pki_.ca()};
  ASSERT_EQ(kept_alive.peer_serial(), std::to_string(first_serial));

  pki_.issue("driftd-two", second_serial, "server.pem", "server.key");
  hangup_and_wait_for("TLS certificate reloaded");

  tls_socket fresh{port_, pki_.ca()};
  EXPECT_EQ(fresh.peer_serial(), std::to_string(second_serial));
  EXPECT_EQ(fresh.peer_common_name(), "driftd-two");

  wss_client writer{port_, pki_.ca(), room};
  writer.send(push_msg("k", "after reload"));
  EXPECT_EQ(subscriber.recv(), server_push("k", "after reload", 1));
  ASSERT_TRUE(kept_alive.send(http_text(port_, "GET", "/healthz")));
  EXPECT_EQ(read_http_reply(kept_alive).status, 200u);
  EXPECT_EQ(kept_alive.peer_serial(), std::to_string(first_serial));

  subscriber.close();
  EXPECT_EQ(subscriber.close_code(), 1000);
}

TEST_F(TlsProcessTest, ANodeThatReloadedStopsCleanly) {
  pki_.issue("driftd-two", second_serial, "server.pem", "server.key");
  hangup_and_wait_for("TLS certificate reloaded");
  EXPECT_EQ(https_call(port_, pki_.ca(), "GET", "/healthz").status, 200u);
  node_->signal(SIGTERM);
  const auto status = node_->wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "no exit within 10 s of SIGTERM";
  EXPECT_EQ(describe_status(*status), "exit 0");
}

TEST_F(TlsProcessTest, ASighupWithABrokenKeyKeepsTheCertificateInUse) {
  {
    std::ofstream broken{pki_.path("server.key"), std::ios::trunc};
    broken << "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  }
  hangup_and_wait_for("TLS certificate not reloaded");
  EXPECT_TRUE(node_->alive());
  tls_socket fresh{port_, pki_.ca()};
  EXPECT_EQ(fresh.peer_serial(), std::to_string(first_serial));
  EXPECT_EQ(https_call(port_, pki_.ca(), "GET", "/healthz").status, 200u);
}

TEST(TlsStartProcessTest, AnUnreadableCertificateEndsTheStartWithAMessage) {
  test_pki pki;
  pki.issue("driftd-one", first_serial, "server.pem", "server.key");
  const uint16_t port = free_port();
  node_process node{"tls", port, 0, pki.path("node.log")};
  node.start({"--port", std::to_string(port), "--storage", "memory", "--tls-cert",
              pki.path("missing.pem"), "--tls-key", pki.path("server.key")});
  const auto status = node.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "the node did not exit";
  EXPECT_EQ(describe_status(*status), "exit 1");
  const std::string log = file_text(node.log_path());
  EXPECT_NE(log.find("cannot read the certificate " + pki.path("missing.pem")), std::string::npos)
      << log;

  node_process half{"tls-half", port, 0, pki.path("half.log")};
  half.start({"--port", std::to_string(port), "--tls-cert", pki.path("server.pem")});
  const auto half_status = half.wait_exit(10s);
  ASSERT_TRUE(half_status.has_value());
  EXPECT_NE(describe_status(*half_status), "exit 0");
  EXPECT_NE(file_text(half.log_path()).find("tls-cert is set without tls-key"), std::string::npos);
}

}  // namespace
}  // namespace driftd::multinode
