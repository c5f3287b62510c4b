#pragma once
// Where a node keeps its rooms: the retained streams of each room, its seq high-water mark
// and the time of its last activity. The room actors talk to this interface only; the
// RocksDB implementation is in rocks_store.hpp. No CAF, no Asio.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace driftd::storage {

/// One retained entry as stored: its seq, its value as CBOR, and what it counts against its
/// room's retained-bytes limit (its size on the wire).
struct stored_entry {
  uint64_t seq = 0;
  std::string value;
  uint32_t size = 0;
};

/// What is kept of a room besides its streams.
struct room_meta {
  room_meta() = default;
  room_meta(uint64_t high_water_mark, int64_t active_ms)
      : high_water(high_water_mark), last_active_ms(active_ms) {}

  /// No seq above this was ever used in the room. Rooms write it in blocks ahead of need,
  /// so that a relay (which takes a seq but changes no stream) costs no write.
  uint64_t high_water = 0;
  /// Wall-clock time (ms since the Unix epoch) of the room's last write, or of its last
  /// connection leaving: its expiry counts from here.
  int64_t last_active_ms = 0;

  // -- a replica of a replicated room (docs/replication.md); zero on a single node --
  /// The highest epoch this replica promised, and to which member ("" once released).
  uint64_t promised = 0;
  std::string promised_owner;
  /// The last write this replica applied: its epoch and its number within that epoch; and
  /// the room's seq after it.
  uint64_t accepted = 0;
  uint64_t last_n = 0;
  uint64_t head = 0;
};

/// A room as read back.
struct room_record {
  /// False when nothing is stored: the room was never written, or expired and was deleted.
  bool exists = false;
  room_meta meta;
  /// Every key with retained entries, each key's entries in ascending seq order; keys in
  /// any order.
  std::vector<std::pair<std::string, std::vector<stored_entry>>> streams;
};

/// Changes to one room, applied atomically (all or none), and after every write submitted
/// before it.
struct room_write {
  std::string room;
  /// Delete everything stored for the room first (a room that expired, or moved away).
  bool erase_room = false;
  /// Entries to remove, as (key, seq).
  std::vector<std::pair<std::string, uint64_t>> erases;
  /// Entries to store, as (key, entry); a put of an existing (key, seq) replaces it.
  std::vector<std::pair<std::string, stored_entry>> puts;
  /// The room's new meta, when it changed. A write that only erases the room needs none.
  bool has_meta = false;
  room_meta meta;
};

/// When a write counts as durable.
enum class fsync_policy : uint8_t {
  /// Synced to disk before it is acknowledged; one sync covers every write that fell due
  /// together (group commit).
  always,
  /// Handed to the OS before it is acknowledged (a process crash loses nothing) and synced
  /// every `fsync_interval` (a machine crash loses at most that window).
  interval,
  /// Handed to the OS before it is acknowledged; the OS decides when it reaches the disk.
  never,
};

/// Counters of a store; read with stats() from any thread.
struct store_stats {
  uint64_t writes = 0;          ///< room_writes acknowledged (successfully)
  uint64_t write_errors = 0;    ///< room_writes that failed
  uint64_t commits = 0;         ///< group commits (one storage write each)
  uint64_t fsyncs = 0;          ///< syncs to disk
  uint64_t largest_commit = 0;  ///< most room_writes one group commit carried
  uint64_t loads = 0;           ///< rooms read back
  uint64_t expired = 0;         ///< rooms deleted by expiry
  uint64_t bytes_on_disk = 0;   ///< live data files and logs
  /// Empty while the store works; else the last failure, e.g. "No space left on device".
  std::string failure;
};

/// A node's storage. Every member may be called from any thread and never blocks on disk:
/// work is queued and the callbacks run later on a thread of the store, which must not block
/// either (they typically send an actor message). Callbacks of one room's writes run in the
/// order the writes were submitted. The store must outlive every callback it was given; its
/// destructor finishes queued work first.
class store {
 public:
  virtual ~store() = default;

  /// Queues `w`. `done` gets an empty string once `w` is durable under the store's fsync
  /// policy, or the reason it failed (then nothing of `w` was acknowledged; the store keeps
  /// trying later writes, and recovers by itself when the cause goes away, e.g. disk space
  /// returns).
  virtual void write(room_write w, std::function<void(std::string error)> done) = 0;

  /// Reads room `room` back, seeing every write acknowledged before the call. `done` gets
  /// the record, or an error text when the room could not be read.
  virtual void load(std::string room,
                    std::function<void(room_record record, std::string error)> done) = 0;

  /// A room is loaded in memory (`loaded` true) or no longer (false): expiry leaves loaded
  /// rooms alone, their actors decide for themselves. Mark a room loaded before its load,
  /// and unloaded after submitting its last write: then expiry never deletes a room that is
  /// in memory, and a load racing an expiry sees the room whole or not at all.
  virtual void set_loaded(const std::string& room, bool loaded) = 0;

  virtual store_stats stats() const = 0;
};

/// Settings of a disk store.
struct store_config {
  /// The folder of the database; created when missing.
  std::string dir;
  fsync_policy fsync = fsync_policy::always;
  std::chrono::milliseconds fsync_interval{100};
  /// Rooms not loaded whose last activity is older than this are deleted. Expiry goes by
  /// the meta: a room never written with one is never expired.
  std::chrono::milliseconds room_ttl{std::chrono::hours{24}};
  /// How often expired rooms are looked for (at most; shorter TTLs look more often).
  std::chrono::milliseconds sweep_interval{std::chrono::minutes{1}};
  /// Memory for cached blocks of the database (data and index blocks).
  std::size_t block_cache_bytes = 8u << 20;
};

/// Opens (or creates) the RocksDB store in `cfg.dir`. Returns null with `error` set when
/// the folder is in use by another process, unreadable or corrupt, or holds files that are
/// not a driftd database: a node never starts empty over existing data.
std::unique_ptr<store> open_rocks_store(const store_config& cfg, std::string& error);

}  // namespace driftd::storage
