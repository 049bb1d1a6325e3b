#pragma once
/// The RocksDB-facing pieces `rocksdb_store::open` is assembled from: looking
/// at a path without touching it, probing the LOCK, opening a database
/// read-only or for writing, and turning RocksDB statuses into Caudal ones.
/// Internal to storage/: only rocksdb_store.cpp and its tests include it.
///
/// Thread-safety: free functions; `db_handles` is owned by one caller.

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/statistics.h>

#include "storage/kv_store.hpp"

namespace caudal::storage::detail {

/// What `classify_path` found at a path that may be opened.
enum class path_kind {
  absent,
  empty_directory,
  /// What a process killed while RocksDB created the database leaves: no
  /// CURRENT yet, only the files RocksDB writes before it (LOCK, LOG,
  /// IDENTITY, the first MANIFEST, a CURRENT temp file) — no data.
  interrupted_creation,
  rocksdb_directory,
};

/// Looks at `path` without changing it. A regular file, another
/// non-directory, or a non-empty directory without a RocksDB `CURRENT` file
/// that is not an interrupted creation is refused (`refused_not_caudal`); a
/// path that cannot be inspected is an `io_error`.
result<path_kind> classify_path(const std::string& path);

/// Fails with `refused_locked` when another process (or another handle in
/// this one) holds the RocksDB LOCK of the database at `path`. Probing takes
/// the lock and releases it at once; an absent LOCK file is not created.
status probe_lock(const std::string& path);

/// The column families of the RocksDB at `path` (read without the lock and
/// without writing); `refused_damaged` when CURRENT or the MANIFEST cannot be
/// read.
result<std::vector<std::string>> list_column_families(const std::string& path);

/// An open RocksDB and its column family handles; releases them on
/// destruction.
struct db_handles {
  rocksdb::DB* db = nullptr;
  /// Every column family opened; RocksDB requires all of a database's
  /// families to be opened for writing, Caudal's or not.
  std::vector<rocksdb::ColumnFamilyHandle*> all;
  /// Caudal's families, indexed by `column_family`; null when absent
  /// (only possible read-only).
  std::array<rocksdb::ColumnFamilyHandle*, 4> caudal{};
  std::shared_ptr<rocksdb::Statistics> statistics;
  bool is_read_only = false;
  /// A secondary instance's own directory (its info log), removed on
  /// release; empty for the other modes (rocksdb_secondary.hpp).
  std::string secondary_dir;

  db_handles() = default;
  db_handles(const db_handles&) = delete;
  db_handles& operator=(const db_handles&) = delete;
  ~db_handles() { release(); }

  rocksdb::ColumnFamilyHandle* handle(column_family cf) const {
    return caudal[static_cast<size_t>(cf)];
  }
  /// Destroys the handles, closes the database and removes `secondary_dir`;
  /// returns RocksDB's status.
  rocksdb::Status release();
  bool is_secondary() const { return !secondary_dir.empty(); }
};

enum class open_mode {
  read_only,   ///< inspects; writes nothing at the path (no LOG either)
  read_write,  ///< an existing database; adds missing Caudal families
  create,      ///< a new database in an absent path or empty directory
};

/// Opens the database at `path` with the families `existing` (as listed) plus
/// Caudal's when writing. Errors: `refused_locked`; `io_error` when creating
/// fails; `refused_damaged` otherwise (the message carries RocksDB's).
result<std::unique_ptr<db_handles>> open_rocksdb(const std::string& path,
                                                 const std::vector<std::string>& existing,
                                                 open_mode mode, bool is_counting_syncs);

/// Fills `handles.caudal` from `handles.all` by family name.
void index_caudal_families(db_handles& handles);

/// Whether the database at `path` (open in `handles`) is what a crash between
/// RocksDB's creation and Caudal's identity write leaves behind: its families
/// are a non-empty subset of Caudal's (plus "default"), no family holds a
/// key, and the directory holds no table (.sst) file — a table that the
/// MANIFEST no longer lists would mean lost data, never a fresh database.
result<bool> is_unfinished_creation(const std::string& path, db_handles& handles,
                                    const std::vector<std::string>& names);

/// Refuses the database at `path` (open read-only in `handles`, its
/// write-ahead log replayed) when its directory holds a table (.sst) file that
/// the MANIFEST does not list and that holds a record the database lacks.
/// RocksDB opens a MANIFEST whose last edits are lost (cut or torn), and a
/// read-write open then deletes the tables those edits added as obsolete —
/// and with them the only copy of their records. A crash leaves unlisted
/// tables too, and they pass: a flush's output (its records are still in the
/// write-ahead log, which RocksDB keeps until the flush is recorded), a
/// compaction's output (its inputs are still live) or inputs (their records
/// are in the recorded output), a table cut short (RocksDB records only
/// complete, synced tables). The check is by content: every key the table
/// holds must be visible in its column family. It lists the live files and
/// the directory, and reads no table file unless one is unlisted.
///
/// Limits: a key is checked for presence, not for its value; a deletion made
/// after the table's records hides keys it holds; a table whose footer cannot
/// be read is taken for one cut short. Events are written once, but a run's
/// header is rewritten as the run goes (and the schema version by a
/// migration): a lost table goes unnoticed when it held nothing but newer
/// values of keys still present. Caudal deletes keys only in migrations, so
/// a sound database is refused only when a crash interrupts a flush or
/// compaction of records that a migration has deleted.
///
/// Errors: `refused_damaged` naming `path` and the table; `io_error` when
/// the directory or an unlisted table cannot be read.
status check_unlisted_tables(const std::string& path, const db_handles& handles);

/// The Caudal families missing from `names`, comma-separated; empty when all
/// four are there.
std::string missing_caudal_families(const std::vector<std::string>& names);

/// RocksDB status → Caudal status with `code`, prefixed by `context`.
status from_rocksdb(const rocksdb::Status& s, status_code code, const std::string& context);

/// True when `s` reports that the LOCK file is held (by this process or
/// another): RocksDB 7.8 says "lock hold by current process" or
/// "While lock file: …: Resource temporarily unavailable".
bool is_lock_error(const rocksdb::Status& s);

/// The refusal for a held database, naming `path`.
status locked_status(const std::string& path, const rocksdb::Status& s);

}  // namespace caudal::storage::detail
