#include "storage/rocks_store.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include "config/logging.hpp"
#include "storage/encoding.hpp"

namespace driftd::storage {

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// A commit stops taking queued writes past this many bytes, so that a flood of queued
// writes becomes several RocksDB writes rather than one huge batch held twice in memory.
constexpr std::size_t max_commit_bytes = 4u << 20;
// Index records one sweep step looks at before it hands its deletions to the writer:
// enough to amortise a commit, few enough that rooms written meanwhile are rare.
constexpr std::size_t sweep_step_records = 256;
// An expired room with at most this many records is deleted record by record; a bigger one
// by one range deletion. Point deletions are dropped cheaply by compaction and counted by
// the compact-on-deletion collector; a range deletion avoids reading a big room, but every
// one of them stays in memory beside its memtable and SST until compacted away.
constexpr std::size_t sweep_point_delete_max = 64;
// The expiry index keeps a room in one bucket per this fraction of the TTL: coarse enough
// that a busy room adds few index records, fine enough that expiry is rarely late.
constexpr int64_t ttl_buckets = 64;
// How often the sweeper measures bytes_on_disk while the database changes.
constexpr auto disk_bytes_period = std::chrono::seconds{1};
// The writer remembers the index bucket of this many rooms at most; past that it forgets
// them all and rewrites an index record or two again.
constexpr std::size_t indexed_rooms_max = 100000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t floor_to(int64_t v, int64_t step) {
  int64_t q = v / step;
  if (v % step != 0 && v < 0) --q;
  return q * step;
}

std::string describe(const rocksdb::Status& s) {
  return s.ToString();
}

// RocksDB calls this from its own threads and from the writer's Write(). It only leaves
// word for the writer: the writer alone recovers (DB::Resume or a reopen), so automatic
// recovery, which would answer Busy to the writer's Resume, is turned off.
class error_listener final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status*) override {
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) {
      wal_failed_.store(true, std::memory_order_release);
    }
    raised_.store(true, std::memory_order_release);
  }

  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

  /// True once per background error raised since the last call.
  bool take_raised() { return raised_.exchange(false, std::memory_order_acq_rel); }
  /// Whether writing or syncing the WAL failed since the last recovery.
  bool wal_failed() const { return wal_failed_.load(std::memory_order_acquire); }
  void recovered() { wal_failed_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> raised_{false};
  std::atomic<bool> wal_failed_{false};
};

// RocksDB's own log goes to the "storage" logger instead of a LOG file in the database
// folder: that file shares the disk with the data, and once a write to it fails for want
// of space, RocksDB builds that keep their assertions (Debian's does) abort at the next
// line logged.
class log_bridge final : public rocksdb::Logger {
 public:
  explicit log_bridge(rocksdb::InfoLogLevel level)
      : rocksdb::Logger(level), log_(config::logger("storage")) {}

  void Logv(const char* format, va_list ap) override { Logv(rocksdb::INFO_LEVEL, format, ap); }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    auto lvl = spdlog::level::debug;
    if (level == rocksdb::WARN_LEVEL) lvl = spdlog::level::warn;
    if (level == rocksdb::ERROR_LEVEL || level == rocksdb::FATAL_LEVEL) {
      lvl = spdlog::level::err;
    }
    log_.log(lvl, "rocksdb: {}", line);
  }

 private:
  spdlog::logger& log_;
};

rocksdb::CompressionType first_supported(std::initializer_list<rocksdb::CompressionType> wanted) {
  const auto have = rocksdb::GetSupportedCompressions();
  for (auto c : wanted) {
    if (std::find(have.begin(), have.end(), c) != have.end()) return c;
  }
  return rocksdb::kNoCompression;
}

// Many small rooms on a small machine: small memtables and files, two background jobs,
// a small block cache that also holds index blocks (so memory does not grow with the
// data), cheap compression for fresh data and a denser one where most data rests.
rocksdb::Options make_options(const store_config& cfg, bool create,
                              std::shared_ptr<error_listener> listener) {
  rocksdb::Options o;
  o.create_if_missing = create;
  o.paranoid_checks = true;
  // One flush and one compaction at a time: the machine has few cores, and the node's
  // I/O threads need them.
  o.max_background_jobs = 2;
  o.max_subcompactions = 1;
  // Memtables of 16 MiB, at most three (48 MiB): a burst keeps being taken while one
  // flushes, instead of stalling the writer.
  o.write_buffer_size = 16u << 20;
  o.max_write_buffer_number = 3;
  o.level0_file_num_compaction_trigger = 4;
  o.target_file_size_base = 16u << 20;
  o.max_bytes_for_level_base = 64u << 20;
  // Keeps most data in the last level, so that deleted rooms leave the disk within about
  // a tenth of the data size; periodic compaction rewrites every file at least daily, so
  // data deleted where nothing else is written goes too.
  o.level_compaction_dynamic_level_bytes = true;
  o.periodic_compaction_seconds = uint64_t{24} * 60 * 60;
  o.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(128, 64, 0.5));
  o.compression = first_supported({rocksdb::kLZ4Compression, rocksdb::kSnappyCompression});
  const auto bottom = first_supported({rocksdb::kZSTD, rocksdb::kLZ4Compression});
  if (bottom != rocksdb::kNoCompression) o.bottommost_compression = bottom;
  o.max_open_files = 512;
  o.info_log = std::make_shared<log_bridge>(
      config::logger("storage").should_log(spdlog::level::debug) ? rocksdb::INFO_LEVEL
                                                                 : rocksdb::WARN_LEVEL);
  o.max_manifest_file_size = 64u << 20;
  o.avoid_unnecessary_blocking_io = true;
  // The writer resumes after errors itself (see error_listener).
  o.max_bgerror_resume_count = 0;
  o.listeners.push_back(std::move(listener));

  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(std::max<std::size_t>(cfg.block_cache_bytes, 1u << 20));
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // No bloom filter: loads are range scans, which filters do not help.
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

bool is_lock_conflict(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("While lock file") != std::string::npos ||
         text.find("lock hold by current process") != std::string::npos;
}

struct write_item {
  room_write w;
  std::function<void(std::string)> done;
};

struct load_item {
  std::string room;
  std::function<void(room_record, std::string)> done;
  /// Expiry decisions taken before the load was asked for; it waits until they are
  /// committed, so that it sees a room the sweep is deleting whole or not at all.
  uint64_t expiry_ticket = 0;
};

// What one sweep step would change for one room. The writer drops it when the room was
// written (or asked to be) after the step looked, or is loaded.
struct sweep_op {
  std::string room;
  bool expire = false;
  /// When expiring: one range deletion instead of `records`.
  bool range = false;
  std::vector<std::string> records;
  std::vector<std::string> index_deletes;
  std::vector<std::string> index_puts;
  bool dropped = false;
};

struct sweep_proposal {
  std::vector<sweep_op> ops;
  bool done = false;
  uint64_t expired = 0;
};

}  // namespace

struct rocks_store::impl {
  impl(store_config cfg, rocksdb::Options options, std::unique_ptr<rocksdb::DB> db,
       std::shared_ptr<error_listener> listener)
      : cfg_(std::move(cfg)),
        options_(std::move(options)),
        listener_(std::move(listener)),
        db_(std::move(db)),
        ttl_ms_(std::max<int64_t>(cfg_.room_ttl.count(), 1)),
        bucket_ms_(std::max<int64_t>(ttl_ms_ / ttl_buckets, 1)),
        sweep_period_(std::max(std::chrono::milliseconds{1},
                               std::min(cfg_.sweep_interval, cfg_.room_ttl / 4))) {
    options_.create_if_missing = false;
    stats_.bytes_on_disk = disk_bytes();
    writer_ = std::thread([this] { writer_loop(); });
    reader_ = std::thread([this] { reader_loop(); });
    sweeper_ = std::thread([this] { sweeper_loop(); });
  }

  ~impl() {
    // The sweeper first: its proposals need the writer. Then the reader, whose loads may
    // wait for an expiry commit. The writer last, draining every queued write.
    stop(stop_sweeper_, sweeper_cv_, sweeper_);
    stop(stop_reader_, reader_cv_, reader_);
    stop(stop_writer_, writer_cv_, writer_);
    if (db_) {
      const auto s = db_->Close();
      if (!s.ok()) log().warn("closing {} failed: {}", cfg_.dir, describe(s));
      db_.reset();
    }
  }

  void stop(bool& flag, std::condition_variable& cv, std::thread& t) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      flag = true;
    }
    cv.notify_all();
    t.join();
  }

  static spdlog::logger& log() { return config::logger("storage"); }

  // --- calls from any thread -------------------------------------------------------------

  void write(room_write w, std::function<void(std::string)> done) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      ++pending_[w.room];
      if (watching_) touched_.insert(w.room);
      writes_.push_back({std::move(w), std::move(done)});
    }
    writer_cv_.notify_one();
  }

  void load(std::string room, std::function<void(room_record, std::string)> done) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      loads_.push_back({std::move(room), std::move(done), expiry_decided_});
    }
    reader_cv_.notify_one();
  }

  void set_loaded(const std::string& room, bool loaded) {
    std::lock_guard<std::mutex> guard{mutex_};
    if (loaded) {
      loaded_.insert(room);
    } else {
      loaded_.erase(room);
    }
  }

  store_stats stats() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return stats_;
  }

  void sweep_now(std::function<void(uint64_t)> done) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      sweep_requests_.push_back(std::move(done));
    }
    sweeper_cv_.notify_one();
  }

  void after_next_sweep(std::function<void(uint64_t)> done) {
    std::lock_guard<std::mutex> guard{mutex_};
    sweep_waiters_.push_back(std::move(done));
  }

  // --- writer thread ---------------------------------------------------------------------

  void writer_loop() {
    std::vector<write_item> batch;
    for (;;) {
      sweep_proposal* proposal = nullptr;
      uint64_t expiry_ticket = 0;
      {
        std::unique_lock<std::mutex> lk{mutex_};
        const auto ready = [&] { return !writes_.empty() || proposal_ || stop_writer_; };
        // While failing nothing is synced (see sync_if_due), so there is no deadline.
        if (unsynced_ && !failing_) {
          writer_cv_.wait_until(lk, sync_due_, ready);
        } else {
          writer_cv_.wait(lk, ready);
        }
        if (writes_.empty() && !proposal_ && stop_writer_) break;
        std::size_t bytes = 0;
        while (!writes_.empty() && (batch.empty() || bytes < max_commit_bytes)) {
          bytes += approximate_bytes(writes_.front().w);
          batch.push_back(std::move(writes_.front()));
          writes_.pop_front();
        }
        if (proposal_) {
          proposal = std::exchange(proposal_, nullptr);
          expiry_ticket = decide(*proposal);
        }
      }
      if (!batch.empty() || proposal) commit(batch, proposal, expiry_ticket);
      batch.clear();
      sync_if_due(false);
    }
    sync_if_due(true);
  }

  static std::size_t approximate_bytes(const room_write& w) {
    std::size_t n = w.room.size() + 32;
    for (const auto& [key, e] : w.puts)
      n += key.size() + e.value.size() + 16;
    for (const auto& [key, seq] : w.erases)
      n += key.size() + 16;
    return n;
  }

  // Under mutex_. Keeps the proposal's changes for rooms that nobody wrote, asked to write
  // or loaded since the sweep step looked at them. Returns the expiry ticket loads must
  // wait for (0 when nothing expires).
  uint64_t decide(sweep_proposal& p) {
    bool expires = false;
    for (auto& op : p.ops) {
      op.dropped = loaded_.count(op.room) != 0 || touched_.count(op.room) != 0;
      expires = expires || (op.expire && !op.dropped);
    }
    watching_ = false;
    touched_.clear();
    return expires ? ++expiry_decided_ : 0;
  }

  void commit(std::vector<write_item>& batch, sweep_proposal* proposal, uint64_t expiry_ticket) {
    rocksdb::Status s;
    bool resumed = false;
    if (failing_ || listener_->take_raised()) s = recover(resumed);

    std::vector<std::pair<std::string, int64_t>> indexed;
    uint64_t expired = 0;
    if (s.ok()) {
      rocksdb::WriteBatch wb;
      if (proposal) expired = add_sweep(wb, *proposal);
      for (const auto& item : batch)
        add_write(wb, item.w, indexed);
      rocksdb::WriteOptions wo;
      wo.sync = cfg_.fsync == fsync_policy::always;
      s = db_->Write(wo, &wb);
    }

    std::string error;
    if (s.ok()) {
      if (failing_) log().info("storage in {} writes again", cfg_.dir);
      failing_ = false;
      recovery_ = recovery_step::resume;
      if (cfg_.fsync == fsync_policy::interval && !unsynced_) {
        unsynced_ = true;
        sync_due_ = steady::now() + cfg_.fsync_interval;
      }
      for (auto& [room, bucket] : indexed)
        indexed_[room] = bucket;
      if (proposal) {
        for (const auto& op : proposal->ops) {
          if (!op.dropped && !op.index_deletes.empty()) indexed_.erase(op.room);
        }
      }
      if (indexed_.size() > indexed_rooms_max) indexed_.clear();
    } else {
      error = "storage write failed: " + describe(s);
      if (!failing_) log().warn("storage in {}: {}", cfg_.dir, error);
      failing_ = true;
      note_failed_wal();
      // A Resume that succeeded without curing the writes (RocksDB keeps a WAL writer that
      // failed once, and switches to a new WAL only when it has a memtable to flush) is
      // followed by a reopen.
      if (resumed) recovery_ = recovery_step::reopen;
      expired = 0;
    }

    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (const auto& item : batch) {
        auto it = pending_.find(item.w.room);
        if (it != pending_.end() && --it->second == 0) pending_.erase(it);
      }
      ++stats_.commits;
      if (s.ok()) {
        stats_.writes += batch.size();
        if (cfg_.fsync == fsync_policy::always) ++stats_.fsyncs;
        stats_.largest_commit = std::max<uint64_t>(stats_.largest_commit, batch.size());
        stats_.expired += expired;
        stats_.failure.clear();
        disk_changed_ = true;
      } else {
        stats_.write_errors += batch.size();
        stats_.failure = error;
      }
      if (expiry_ticket != 0) expiry_committed_ = expiry_ticket;
      if (proposal) {
        proposal->expired = expired;
        proposal->done = true;
      }
    }
    if (expiry_ticket != 0) reader_cv_.notify_all();
    if (proposal) sweeper_cv_.notify_all();
    for (auto& item : batch) {
      if (item.done) item.done(error);
    }
  }

  uint64_t add_sweep(rocksdb::WriteBatch& wb, const sweep_proposal& p) {
    uint64_t expired = 0;
    for (const auto& op : p.ops) {
      if (op.dropped) continue;
      if (op.expire) {
        ++expired;
        if (op.range) {
          wb.DeleteRange(encoding::room_prefix(op.room), encoding::room_end(op.room));
        } else {
          for (const auto& k : op.records)
            wb.Delete(k);
        }
      }
      for (const auto& k : op.index_deletes)
        wb.Delete(k);
      for (const auto& k : op.index_puts)
        wb.Put(k, rocksdb::Slice{});
    }
    return expired;
  }

  void add_write(rocksdb::WriteBatch& wb, const room_write& w,
                 std::vector<std::pair<std::string, int64_t>>& indexed) {
    // A range deletion does not read the room, which may be big, on the writer thread.
    if (w.erase_room) wb.DeleteRange(encoding::room_prefix(w.room), encoding::room_end(w.room));
    for (const auto& [key, seq] : w.erases)
      wb.Delete(encoding::entry_key(w.room, key, seq));
    for (const auto& [key, e] : w.puts) {
      wb.Put(encoding::entry_key(w.room, key, e.seq), encoding::entry_value(e));
    }
    if (w.has_meta) {
      wb.Put(encoding::meta_key(w.room), encoding::meta_value(w.meta));
      const int64_t bucket = floor_to(w.meta.last_active_ms, bucket_ms_);
      auto it = indexed_.find(w.room);
      if (it == indexed_.end() || it->second != bucket) {
        wb.Put(encoding::expiry_key(bucket, w.room), rocksdb::Slice{});
        indexed.emplace_back(w.room, bucket);
      }
    }
  }

  // Brings the database out of a failed state before a commit. `resumed` tells whether a
  // Resume succeeded (a commit that fails after one calls for a reopen).
  rocksdb::Status recover(bool& resumed) {
    if (db_ && recovery_ == recovery_step::resume && !wal_stuck()) {
      rocksdb::Status s = db_->Resume();
      if (s.ok()) {
        listener_->recovered();
        failed_wal_ = 0;
        resumed = true;
        return s;
      }
      // RocksDB does not resume from a fatal error (e.g. a WAL write that failed with
      // anything but "no space"); reopening replays the WAL into a fresh state.
      if (s.severity() < rocksdb::Status::Severity::kFatalError) return s;
    }
    return reopen();
  }

  // After a failed WAL write RocksDB keeps the WAL writer that failed, and Resume moves to
  // a new WAL only when it has a memtable to flush. With an empty memtable the next write
  // would go to the failed writer (an assertion in RocksDB builds that keep them, an error
  // in others), so that case reopens instead.
  bool wal_stuck() {
    if (!listener_->wal_failed()) return false;
    uint64_t entries = 0;
    return current_wal() == failed_wal_ &&
           db_->GetIntProperty(rocksdb::DB::Properties::kNumEntriesActiveMemTable, &entries) &&
           entries == 0;
  }

  // The number of the WAL file being written (0 when unknown).
  uint64_t current_wal() {
    std::unique_ptr<rocksdb::LogFile> wal;
    if (!db_ || !db_->GetCurrentWalFile(&wal).ok() || !wal) return 0;
    return wal->LogNumber();
  }

  // After a failed write or sync: notes which WAL writer failed, if one did.
  void note_failed_wal() {
    if (listener_->wal_failed() && failed_wal_ == 0) failed_wal_ = current_wal();
  }

  rocksdb::Status reopen() {
    std::unique_lock<std::shared_mutex> exclusive{db_mutex_};
    if (db_) {
      const auto closed = db_->Close();
      if (!closed.ok()) log().warn("closing {} to reopen it: {}", cfg_.dir, describe(closed));
      db_.reset();
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options_, cfg_.dir, &raw);
    if (!s.ok()) {
      unavailable_ = describe(s);
      return s;
    }
    db_.reset(raw);
    unavailable_.clear();
    listener_->take_raised();
    listener_->recovered();
    failed_wal_ = 0;
    recovery_ = recovery_step::resume;
    log().info("storage in {} reopened", cfg_.dir);
    return s;
  }

  void sync_if_due(bool closing) {
    // A failed database syncs nothing (and a failed WAL writer must not be touched); the
    // writes it acknowledged reach the disk by the flush that recovery makes.
    if (!unsynced_ || !db_ || failing_) return;
    if (!closing && steady::now() < sync_due_) return;
    const rocksdb::Status s = db_->SyncWAL();
    if (!s.ok()) note_failed_wal();
    std::lock_guard<std::mutex> guard{mutex_};
    if (s.ok()) {
      unsynced_ = false;
      ++stats_.fsyncs;
    } else {
      // Try again after another interval; the next commit resumes the database first.
      log().warn("storage in {}: sync failed: {}", cfg_.dir, describe(s));
      failing_ = true;
      sync_due_ = steady::now() + cfg_.fsync_interval;
      stats_.failure = "storage sync failed: " + describe(s);
    }
  }

  // --- reader thread ---------------------------------------------------------------------

  void reader_loop() {
    for (;;) {
      load_item item;
      {
        std::unique_lock<std::mutex> lk{mutex_};
        reader_cv_.wait(lk, [&] { return !loads_.empty() || stop_reader_; });
        if (loads_.empty()) break;
        item = std::move(loads_.front());
        loads_.pop_front();
        reader_cv_.wait(lk, [&] { return expiry_committed_ >= item.expiry_ticket; });
      }
      room_record record;
      std::string error;
      {
        std::shared_lock<std::shared_mutex> shared{db_mutex_};
        if (!db_) {
          error = "storage unavailable: " + unavailable_;
        } else {
          error = read_room(*db_, item.room, record);
        }
      }
      if (error.empty()) {
        std::lock_guard<std::mutex> guard{mutex_};
        ++stats_.loads;
      }
      if (item.done) item.done(std::move(record), std::move(error));
    }
  }

  static std::string read_room(rocksdb::DB& db, const std::string& room, room_record& record) {
    const std::string begin = encoding::room_prefix(room);
    const std::string end = encoding::room_end(room);
    const rocksdb::Slice upper{end};
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    // One iterator reads one consistent state: a room written or deleted in one batch is
    // seen whole or not at all.
    std::unique_ptr<rocksdb::Iterator> it{db.NewIterator(ro)};
    for (it->Seek(begin); it->Valid(); it->Next()) {
      const auto k = it->key();
      const auto v = it->value();
      encoding::room_key parsed;
      if (!encoding::decode_room_key({k.data(), k.size()}, parsed) || parsed.room != room) {
        return "storage read failed: malformed record in room " + room;
      }
      record.exists = true;
      if (parsed.what == encoding::room_key::kind::meta) {
        if (!encoding::decode_meta_value({v.data(), v.size()}, record.meta)) {
          return "storage read failed: malformed meta of room " + room;
        }
        continue;
      }
      if (record.streams.empty() || record.streams.back().first != parsed.key) {
        record.streams.emplace_back(std::string{parsed.key}, std::vector<stored_entry>{});
      }
      stored_entry e;
      e.seq = parsed.seq;
      if (!encoding::decode_entry_value({v.data(), v.size()}, e)) {
        return "storage read failed: malformed entry in room " + room;
      }
      record.streams.back().second.push_back(std::move(e));
    }
    if (!it->status().ok()) {
      record = room_record{};
      return "storage read failed: " + describe(it->status());
    }
    return {};
  }

  // --- sweeper thread --------------------------------------------------------------------

  void sweeper_loop() {
    auto next_sweep = steady::now() + sweep_period_;
    auto next_measure = steady::now() + disk_bytes_period;
    for (;;) {
      std::vector<std::function<void(uint64_t)>> requests;
      {
        std::unique_lock<std::mutex> lk{mutex_};
        sweeper_cv_.wait_until(lk, std::min(next_sweep, next_measure),
                               [&] { return stop_sweeper_ || !sweep_requests_.empty(); });
        requests.swap(sweep_requests_);
        if (stop_sweeper_) {
          for (auto& w : sweep_waiters_)
            requests.push_back(std::move(w));
          sweep_waiters_.clear();
          lk.unlock();
          for (auto& r : requests)
            r(0);
          break;
        }
      }
      const auto now = steady::now();
      const bool asked = !requests.empty();
      if (now >= next_sweep || asked) {
        const uint64_t expired = sweep();
        next_sweep = steady::now() + sweep_period_;
        measure_disk(asked);
        next_measure = steady::now() + disk_bytes_period;
        if (expired > 0) log().info("storage in {}: {} rooms expired", cfg_.dir, expired);
        {
          std::lock_guard<std::mutex> guard{mutex_};
          for (auto& w : sweep_waiters_)
            requests.push_back(std::move(w));
          sweep_waiters_.clear();
        }
        for (auto& r : requests)
          r(expired);
      } else if (now >= next_measure) {
        measure_disk(false);
        next_measure = steady::now() + disk_bytes_period;
      }
    }
  }

  bool sweeper_stopping() {
    std::lock_guard<std::mutex> guard{mutex_};
    return stop_sweeper_;
  }

  // Walks the expiry index up to the records of buckets that began a TTL ago, one step at a
  // time, and has the writer delete the rooms found expired.
  uint64_t sweep() {
    const int64_t cutoff = wall_ms() - ttl_ms_;
    const std::string end = encoding::expiry_end(cutoff);
    std::string cursor = encoding::expiry_begin();
    uint64_t expired = 0;
    for (;;) {
      if (sweeper_stopping()) break;
      sweep_proposal proposal;
      {
        // Watch for writes from here on: the step's reads come after, so a room written
        // later than what the step saw is either seen or dropped by the writer.
        std::lock_guard<std::mutex> guard{mutex_};
        watching_ = true;
        touched_.clear();
        for (const auto& [room, n] : pending_)
          touched_.insert(room);
      }
      bool more = false;
      std::string error;
      {
        std::shared_lock<std::shared_mutex> shared{db_mutex_};
        if (db_) more = sweep_step(*db_, cutoff, end, cursor, proposal, error);
      }
      if (!error.empty()) log().warn("expiry sweep of {}: {}", cfg_.dir, error);
      if (proposal.ops.empty()) {
        std::lock_guard<std::mutex> guard{mutex_};
        watching_ = false;
        touched_.clear();
      } else {
        std::unique_lock<std::mutex> lk{mutex_};
        proposal_ = &proposal;
        writer_cv_.notify_one();
        sweeper_cv_.wait(lk, [&] { return proposal.done; });
        expired += proposal.expired;
      }
      if (!more || !error.empty()) break;
    }
    return expired;
  }

  // One step: up to sweep_step_records index records from `cursor` on. Returns whether
  // records remain before `end`.
  bool sweep_step(rocksdb::DB& db, int64_t cutoff, const std::string& end, std::string& cursor,
                  sweep_proposal& proposal, std::string& error) {
    const rocksdb::Snapshot* snapshot = db.GetSnapshot();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    const rocksdb::Slice upper{end};
    rocksdb::ReadOptions index_ro = ro;
    index_ro.iterate_upper_bound = &upper;
    bool more = false;
    // Room -> its expiring op in this step: an older index record of a room found expired
    // joins that op instead of expiring the room twice.
    std::unordered_map<std::string, std::size_t> expiring;
    {
      std::unique_ptr<rocksdb::Iterator> it{db.NewIterator(index_ro)};
      std::size_t seen = 0;
      for (it->Seek(cursor); it->Valid(); it->Next()) {
        if (seen++ == sweep_step_records) {
          more = true;
          break;
        }
        const std::string key = it->key().ToString();
        cursor = key;
        cursor.push_back('\0');
        int64_t bucket = 0;
        std::string_view room_view;
        if (!encoding::decode_expiry_key(key, bucket, room_view)) continue;
        std::string room{room_view};
        if (is_loaded(room)) continue;
        if (auto found = expiring.find(room); found != expiring.end()) {
          proposal.ops[found->second].index_deletes.push_back(key);
          continue;
        }

        std::string value;
        const auto got = db.Get(ro, encoding::meta_key(room), &value);
        room_meta meta;
        if (got.IsNotFound() || (got.ok() && !encoding::decode_meta_value(value, meta))) {
          // The room was deleted (or has no meta to expire by): the record is stale.
          sweep_op op;
          op.room = std::move(room);
          op.index_deletes.push_back(key);
          proposal.ops.push_back(std::move(op));
          continue;
        }
        if (!got.ok()) {
          error = describe(got);
          break;
        }
        if (meta.last_active_ms < cutoff) {
          sweep_op op;
          op.room = room;
          op.expire = true;
          op.index_deletes.push_back(key);
          if (!room_records(db, ro, room, op.records)) op.range = true;
          expiring.emplace(room, proposal.ops.size());
          proposal.ops.push_back(std::move(op));
          continue;
        }
        const int64_t current = floor_to(meta.last_active_ms, bucket_ms_);
        if (current != bucket) {
          // Written since this record: the room's current bucket replaces it (the put is
          // harmless when the writer already made it).
          sweep_op op;
          op.room = room;
          op.index_deletes.push_back(key);
          op.index_puts.push_back(encoding::expiry_key(current, room));
          proposal.ops.push_back(std::move(op));
        }
        // Else the room is in a bucket that began a TTL ago but is not yet expired itself:
        // the next sweep looks again.
      }
      if (error.empty() && !it->status().ok()) error = describe(it->status());
    }
    db.ReleaseSnapshot(snapshot);
    return more;
  }

  // The keys of a room, when it has at most sweep_point_delete_max records.
  static bool room_records(rocksdb::DB& db, const rocksdb::ReadOptions& base,
                           const std::string& room, std::vector<std::string>& out) {
    const std::string end = encoding::room_end(room);
    const rocksdb::Slice upper{end};
    rocksdb::ReadOptions ro = base;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it{db.NewIterator(ro)};
    for (it->Seek(encoding::room_prefix(room)); it->Valid(); it->Next()) {
      if (out.size() == sweep_point_delete_max) {
        out.clear();
        return false;
      }
      out.push_back(it->key().ToString());
    }
    if (!it->status().ok()) {
      out.clear();
      return false;
    }
    return true;
  }

  bool is_loaded(const std::string& room) {
    std::lock_guard<std::mutex> guard{mutex_};
    return loaded_.count(room) != 0;
  }

  void measure_disk(bool always) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (!always && !disk_changed_) return;
      disk_changed_ = false;
    }
    uint64_t bytes = 0;
    {
      std::shared_lock<std::shared_mutex> shared{db_mutex_};
      if (!db_) return;
      bytes = disk_bytes();
    }
    std::lock_guard<std::mutex> guard{mutex_};
    stats_.bytes_on_disk = bytes;
  }

  // Live SST files, WAL files and the MANIFEST. Needs db_ (and db_mutex_ shared, or to be
  // the constructor).
  uint64_t disk_bytes() {
    uint64_t total = 0;
    uint64_t sst = 0;
    if (db_->GetIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &sst)) total += sst;
    rocksdb::VectorLogPtr wals;
    if (db_->GetSortedWalFiles(wals).ok()) {
      for (const auto& w : wals)
        total += w->SizeFileBytes();
    }
    std::vector<std::string> files;
    uint64_t manifest = 0;
    if (db_->GetLiveFiles(files, &manifest, /*flush_memtable=*/false).ok()) total += manifest;
    return total;
  }

  // --- state -----------------------------------------------------------------------------

  const store_config cfg_;
  rocksdb::Options options_;
  const std::shared_ptr<error_listener> listener_;

  // The writer replaces db_ (reopen) under an exclusive lock; the reader and the sweeper
  // use it under a shared one. The writer itself needs no lock to use it.
  std::shared_mutex db_mutex_;
  std::unique_ptr<rocksdb::DB> db_;
  std::string unavailable_;  // why db_ is null; under db_mutex_

  const int64_t ttl_ms_;
  const int64_t bucket_ms_;
  const std::chrono::milliseconds sweep_period_;

  mutable std::mutex mutex_;  // guards everything down to the writer's own state
  std::condition_variable writer_cv_;
  std::condition_variable reader_cv_;
  std::condition_variable sweeper_cv_;
  std::deque<write_item> writes_;
  std::deque<load_item> loads_;
  std::vector<std::function<void(uint64_t)>> sweep_requests_;
  std::vector<std::function<void(uint64_t)>> sweep_waiters_;
  /// Writes submitted and not yet committed, per room.
  std::unordered_map<std::string, uint32_t> pending_;
  std::unordered_set<std::string> loaded_;
  /// While a sweep step looks: the rooms written or asked to be since it began.
  bool watching_ = false;
  std::unordered_set<std::string> touched_;
  sweep_proposal* proposal_ = nullptr;
  uint64_t expiry_decided_ = 0;
  uint64_t expiry_committed_ = 0;
  bool disk_changed_ = false;
  bool stop_writer_ = false;
  bool stop_reader_ = false;
  bool stop_sweeper_ = false;
  store_stats stats_;

  // The writer's own state.
  enum class recovery_step : uint8_t { resume, reopen };
  bool failing_ = false;
  recovery_step recovery_ = recovery_step::resume;
  bool unsynced_ = false;
  steady::time_point sync_due_{};
  /// The WAL whose writer failed, until recovery moves on from it (0: none).
  uint64_t failed_wal_ = 0;
  /// Room -> the expiry bucket the writer last indexed it in.
  std::unordered_map<std::string, int64_t> indexed_;

  std::thread writer_;
  std::thread reader_;
  std::thread sweeper_;
};

std::unique_ptr<rocks_store> rocks_store::open(const store_config& cfg, std::string& error) {
  error.clear();
  if (cfg.dir.empty()) {
    error = "no storage folder given";
    return nullptr;
  }
  const fs::path dir{cfg.dir};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    error = "cannot create storage folder " + cfg.dir + ": " + ec.message();
    return nullptr;
  }
  if (!fs::is_directory(dir, ec)) {
    error = "storage folder " + cfg.dir + " is not a folder";
    return nullptr;
  }
  fs::directory_iterator entries{dir, ec};
  if (ec) {
    error = "cannot read storage folder " + cfg.dir + ": " + ec.message();
    return nullptr;
  }
  const bool empty = entries == fs::directory_iterator{};
  const bool has_current = fs::exists(dir / "CURRENT", ec);
  const bool has_lock = fs::exists(dir / "LOCK", ec);
  const std::string foreign =
      "storage folder " + cfg.dir +
      " holds files but no driftd database; refusing to create one over them";
  // RocksDB writes its LOCK and LOG files before it finds out that a folder holds no
  // database, so a folder that does not look like one is left untouched.
  if (!empty && !has_current && !has_lock) {
    error = foreign;
    return nullptr;
  }

  auto listener = std::make_shared<error_listener>();
  rocksdb::Options options = make_options(cfg, empty, listener);
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, cfg.dir, &raw);
  if (!s.ok()) {
    if (is_lock_conflict(s)) {
      error = "storage folder " + cfg.dir + " is in use by another driftd process";
    } else if (!has_current && !empty) {
      error = foreign;
    } else {
      error =
          "storage folder " + cfg.dir + " holds a database that cannot be opened: " + describe(s);
    }
    return nullptr;
  }
  std::unique_ptr<rocksdb::DB> db{raw};

  std::string marker;
  const auto got = db->Get(rocksdb::ReadOptions{}, encoding::format_key(), &marker);
  if (got.IsNotFound()) {
    // Only a database without any record may become ours: one created just now, or by a
    // start that stopped before it wrote the marker.
    std::unique_ptr<rocksdb::Iterator> it{db->NewIterator(rocksdb::ReadOptions{})};
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok()) {
      error = "storage folder " + cfg.dir + " holds a RocksDB database that is not driftd's";
      return nullptr;
    }
    it.reset();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    const auto put = db->Put(wo, encoding::format_key(), encoding::format_value());
    if (!put.ok()) {
      error = "cannot initialise storage in " + cfg.dir + ": " + describe(put);
      return nullptr;
    }
  } else if (!got.ok()) {
    error = "storage folder " + cfg.dir + " holds a database that cannot be read: " + describe(got);
    return nullptr;
  } else {
    uint32_t version = 0;
    if (!encoding::decode_format_value(marker, version)) {
      error = "storage folder " + cfg.dir + " holds a RocksDB database that is not driftd's";
      return nullptr;
    }
    if (version != encoding::format_version) {
      error = "storage folder " + cfg.dir + " holds driftd storage of format version " +
              std::to_string(version) + "; this build reads version " +
              std::to_string(encoding::format_version);
      return nullptr;
    }
  }

  impl::log().info("storage in {} open (fsync {})", cfg.dir,
                   cfg.fsync == fsync_policy::always     ? "always"
                   : cfg.fsync == fsync_policy::interval ? "interval"
                                                         : "never");
  return std::unique_ptr<rocks_store>{new rocks_store{
      std::make_unique<impl>(cfg, std::move(options), std::move(db), std::move(listener))}};
}

rocks_store::rocks_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

rocks_store::~rocks_store() = default;

void rocks_store::write(room_write w, std::function<void(std::string error)> done) {
  impl_->write(std::move(w), std::move(done));
}

void rocks_store::load(std::string room,
                       std::function<void(room_record record, std::string error)> done) {
  impl_->load(std::move(room), std::move(done));
}

void rocks_store::set_loaded(const std::string& room, bool loaded) {
  impl_->set_loaded(room, loaded);
}

store_stats rocks_store::stats() const {
  return impl_->stats();
}

void rocks_store::sweep_now(std::function<void(uint64_t expired)> done) {
  impl_->sweep_now(std::move(done));
}

void rocks_store::after_next_sweep(std::function<void(uint64_t expired)> done) {
  impl_->after_next_sweep(std::move(done));
}

std::unique_ptr<store> open_rocks_store(const store_config& cfg, std::string& error) {
  return rocks_store::open(cfg, error);
}

}  // namespace driftd::storage
