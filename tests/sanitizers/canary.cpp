// Deliberate bugs, one per mode, that scripts/ci-extra.sh runs through tests/sanitizers/run.sh
// before the real suites: each must fail, or the suppressions and options would hide reports
// from our own code. Built with the same sanitizer flags as the trees it stands for.
//
//   canary overflow | null-reference | heap | leak | child | race

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

namespace {

// Keeps the optimizer from proving anything about the values below.
volatile int opaque = 1;

void* volatile escaped;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: canary overflow|null-reference|heap|leak|child|race\n", stderr);
    return 2;
  }
  const char* mode = argv[1];
  if (std::strcmp(mode, "overflow") == 0) {
    int x = INT_MAX - 1 + opaque;
    x += opaque;  // signed overflow
    return x == 0;
  }
  if (std::strcmp(mode, "null-reference") == 0) {
    // The shape of CAF's suppressed report, on another type: it must still be reported.
    std::shared_ptr<int> none;
    if (opaque == 1) none.reset();
    int& ref = *none;
    escaped = &ref;
    return 0;
  }
  if (std::strcmp(mode, "heap") == 0) {
    char* bytes = new char[4];
    const int value = bytes[3 + opaque];  // one past the end
    delete[] bytes;
    return value;
  }
  if (std::strcmp(mode, "leak") == 0) {
    escaped = new int[64];
    escaped = nullptr;
    return 0;
  }
  if (std::strcmp(mode, "child") == 0) {
    // A child with a report while the parent exits 0: as a driftd node under a test.
    const pid_t pid = fork();
    if (pid == 0) {
      execl(argv[0], argv[0], "overflow", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return 0;
  }
  if (std::strcmp(mode, "race") == 0) {
    int shared = 0;
    std::thread other{[&shared] { shared += opaque; }};
    shared += opaque;
    other.join();
    return shared == 0;
  }
  std::fprintf(stderr, "canary: unknown mode %s\n", mode);
  return 2;
}
