#pragma once
// Network namespaces for cluster tests that cut links: every node gets a namespace of its
// own, and the test process moves into a fresh namespace too (the hub), so that nothing here
// touches the machine's own network. All addresses live inside these namespaces.
//
//   node i:  vc<i> 10.80.0.<i+1>/24 --- hc<i> on bridge "brc" in the hub   (cluster traffic)
//            vk<i> 10.81.<i+1>.1/24 --- hk<i> 10.81.<i+1>.2/24 in the hub (the test's clients)
//
// cut(i) takes hc<i> off the bridge: node i's cluster traffic to and from every other node
// is dropped in both directions (no reset, no error: packets just vanish), while the test's
// clients still reach it. heal(i) puts it back. Each namespace is held open by a paused
// process of its own, killed with the lab; the hub goes when the test process returns to its
// original namespace and the nodes are gone.

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/integration/client.hpp"

namespace driftd::multinode {

class network_lab {
 public:
  /// Why this machine cannot run the lab (not root, no namespaces, no `ip`); empty if it can.
  static std::string unavailable() {
    if (::geteuid() != 0) return "network namespaces need root (run the tests as root)";
    if (::access("/sbin/ip", X_OK) != 0 && ::access("/usr/sbin/ip", X_OK) != 0 &&
        ::access("/bin/ip", X_OK) != 0 && ::access("/usr/bin/ip", X_OK) != 0) {
      return "the ip command (iproute2) is not installed";
    }
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(::unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      return "this machine does not allow a new network namespace (unshare CLONE_NEWNET)";
    }
    return {};
  }

  /// Moves the calling thread (the test's main thread; before it starts any other) into a
  /// fresh hub namespace and builds the links of `nodes` node namespaces.
  explicit network_lab(std::size_t nodes) {
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) integration::fail(std::string{"open own netns: "} + std::strerror(errno));
    if (::unshare(CLONE_NEWNET) != 0) {
      const int e = errno;
      ::close(original_);
      integration::fail(std::string{"unshare(CLONE_NEWNET): "} + std::strerror(e));
    }
    try {
      ip(-1, {"link", "set", "lo", "up"});
      ip(-1, {"link", "add", "name", "brc", "type", "bridge"});
      ip(-1, {"link", "set", "brc", "up"});
      for (std::size_t i = 0; i < nodes; ++i)
        add_node(i);
    } catch (...) {
      leave();
      throw;
    }
  }

  ~network_lab() { leave(); }

  network_lab(const network_lab&) = delete;
  network_lab& operator=(const network_lab&) = delete;

  std::size_t size() const { return holders_.size(); }
  /// A descriptor of node i's namespace, for setns() in its process.
  int netns_fd(std::size_t i) const { return fds_.at(i); }
  std::string cluster_address(std::size_t i) const { return "10.80.0." + std::to_string(i + 1); }
  std::string client_address(std::size_t i) const {
    return "10.81." + std::to_string(i + 1) + ".1";
  }

  /// Node i can no longer exchange a packet with any other node (its clients still reach it).
  void cut(std::size_t i) { ip(-1, {"link", "set", port_of(i), "nomaster"}); }
  void heal(std::size_t i) { ip(-1, {"link", "set", port_of(i), "master", "brc"}); }

 private:
  static std::string port_of(std::size_t i) { return "hc" + std::to_string(i); }

  /// Runs `ip args...` in the namespace `netns_fd` (-1: the hub); fails unless it exits 0.
  static void ip(int netns_fd, const std::vector<std::string>& args) {
    std::vector<std::string> text{"ip"};
    text.insert(text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : text)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) integration::fail(std::string{"fork: "} + std::strerror(errno));
    if (pid == 0) {
      if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(124);
      const int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, 0);
      ::execvp("ip", argv.data());
      ::_exit(125);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string line;
      for (const auto& a : text)
        line += (line.empty() ? "" : " ") + a;
      integration::fail("`" + line + "` failed (status " + std::to_string(status) + ")");
    }
  }

  /// A paused process in a namespace of its own keeps it open; returns once it is there.
  void add_node(std::size_t i) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0)
      integration::fail(std::string{"pipe: "} + std::strerror(errno));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) integration::fail(std::string{"fork: "} + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const char ok = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &ok, 1);
      for (;;)
        ::pause();
    }
    ::close(ready[1]);
    char ok = 'n';
    const bool got = ::read(ready[0], &ok, 1) == 1;
    ::close(ready[0]);
    holders_.push_back(pid);
    if (!got || ok != 'y')
      integration::fail("a namespace for node " + std::to_string(i) + " failed");
    const int fd =
        ::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) integration::fail(std::string{"open node netns: "} + std::strerror(errno));
    fds_.push_back(fd);

    const std::string n = std::to_string(i);
    const std::string holder = std::to_string(pid);
    ip(-1, {"link", "add", "hc" + n, "type", "veth", "peer", "name", "vc" + n});
    ip(-1, {"link", "set", "vc" + n, "netns", holder});
    ip(-1, {"link", "set", "hc" + n, "master", "brc", "up"});
    ip(-1, {"link", "add", "hk" + n, "type", "veth", "peer", "name", "vk" + n});
    ip(-1, {"link", "set", "vk" + n, "netns", holder});
    ip(-1, {"addr", "add", "10.81." + std::to_string(i + 1) + ".2/24", "dev", "hk" + n});
    ip(-1, {"link", "set", "hk" + n, "up"});
    ip(fd, {"link", "set", "lo", "up"});
    ip(fd, {"addr", "add", cluster_address(i) + "/24", "dev", "vc" + n});
    ip(fd, {"link", "set", "vc" + n, "up"});
    ip(fd, {"addr", "add", client_address(i) + "/24", "dev", "vk" + n});
    ip(fd, {"link", "set", "vk" + n, "up"});
  }

  /// Back to the original namespace; the holders end (their namespaces stay while a node
  /// still runs in one, and go with it).
  void leave() {
    for (const pid_t pid : holders_) {
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    holders_.clear();
    for (const int fd : fds_)
      ::close(fd);
    fds_.clear();
    if (original_ >= 0) {
      ::setns(original_, CLONE_NEWNET);
      ::close(original_);
      original_ = -1;
    }
  }

  int original_ = -1;
  std::vector<pid_t> holders_;
  std::vector<int> fds_;
};

}  // namespace driftd::multinode
