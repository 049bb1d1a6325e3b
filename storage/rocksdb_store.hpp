#pragma once
/// `rocksdb_store`: the journal's `kv_store` on a RocksDB database directory
/// with the column families `meta`, `runs`, `events` and `cache`.
///
/// Opening never harms what is at the path. An absent path or an empty
/// directory becomes a new Caudal database (identity and schema version in
/// `meta`, synced). Anything else is first inspected without writing — the
/// RocksDB LOCK is probed, the column families are listed and the database is
/// opened read-only to check its table files and read the identity and the
/// schema version — and only a Caudal database is then opened for writing. Refusals (status codes
/// `refused_*`, SPEC §7 exit code 5) leave every byte at the path as it was:
///
/// | what is at the path                              | code                   |
/// |--------------------------------------------------|------------------------|
/// | a regular file (or another non-directory)        | refused_not_caudal     |
/// | a non-empty directory without a RocksDB CURRENT  | refused_not_caudal     |
/// | a RocksDB without `meta` or without the identity | refused_not_caudal     |
/// | unreadable CURRENT / MANIFEST / checksum errors  | refused_damaged        |
/// | a table file holding records the MANIFEST lost   | refused_damaged        |
/// | a database another process (or handle) holds     | refused_locked         |
/// | a newer schema version                           | refused_newer_schema   |
/// | an older version whose migration fails           | refused_migration      |
///
/// An older schema is migrated: the registered migrations run in order and
/// their operations, with the new version, are written as one synced batch.
///
/// `open_secondary` is the reader's way in while another process holds the
/// database (`caudal runs` and `caudal show` beside a `caudal run`): a
/// read-only view of what the holder has written, which writes nothing at
/// the path.
///
/// Thread-safety: get, write, scan and catch_up may be called concurrently
/// from any thread (RocksDB serialises writers); close() and the destructor
/// must not race with any other call.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/kv_store.hpp"
#include "storage/schema.hpp"

namespace caudal::storage {

namespace detail {
struct db_handles;
}  // namespace detail

/// How to open a database. The defaults are the production settings.
struct open_options {
  /// The version this code writes: newer databases are refused, older ones
  /// migrated. Tests lower or raise it to exercise the rules.
  uint32_t schema_version = current_schema_version;
  /// The migrations available (see plan_migrations).
  std::vector<migration> migrations = builtin_migrations();
  /// Counts the write-ahead-log syncs RocksDB performs (RocksDB statistics),
  /// so tests can check that the sync flag reaches RocksDB; slightly slower.
  bool is_counting_syncs = false;
};

class rocksdb_store final : public kv_store {
 public:
  /// Opens or creates the database at `path` by the rules above. Errors: the
  /// `refused_*` codes, or `io_error` when the path cannot be inspected or
  /// created (permissions, a full disk). Every message names `path`.
  static result<std::unique_ptr<rocksdb_store>> open(const std::string& path,
                                                     const open_options& options = {});

  /// Opens the Caudal database at `path` read-only beside the process that
  /// holds it (RocksDB's secondary instance, storage/rocksdb_secondary.hpp):
  /// no LOCK is taken and nothing at the path is written; RocksDB's info
  /// log goes to a private temp directory removed on close. The view holds
  /// everything the holder wrote before the open (flushed or still only in
  /// its write-ahead log) and stays as it is until catch_up(); write()
  /// fails. The identity and the schema version are checked as `open` does
  /// (`refused_not_caudal`, `refused_newer_schema`); an older schema, which
  /// only a writer can migrate, and a database still being created are
  /// `refused_locked`. The table-file check of `open` is not run: the holder
  /// ran it when it opened, and a live writer's flush in progress would look
  /// like a lost table. Meant for a database `open` refused as locked; it
  /// works on one nobody holds too. Errors also: `refused_damaged`,
  /// `io_error`; every message names `path`.
  static result<std::unique_ptr<rocksdb_store>> open_secondary(const std::string& path,
                                                               const open_options& options = {});

  /// Closes the database if close() was not called (errors are dropped).
  ~rocksdb_store() override;

  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;

  result<std::string> get(column_family cf, std::string_view key) override;
  status write(const write_batch& batch, bool sync) override;
  status scan(column_family cf, std::string_view prefix, const scan_visitor& visit) override;
  /// Syncs the write-ahead log (so writes made without sync survive a clean
  /// shutdown followed by a machine crash), then releases the database.
  status close() override;

  /// For a store from open_secondary: brings the view up to what the holder
  /// has written since (see detail::catch_up_with_primary); `io_error` when
  /// it cannot. Does nothing on a store from `open`, which is always current.
  status catch_up();

  const std::string& path() const { return path_; }
  /// True for a store from open_secondary.
  bool is_read_only() const;
  /// The random id written in `identity` when the database was created.
  const std::string& database_id() const { return database_id_; }
  /// True when this open created the database.
  bool was_created() const { return was_created_; }
  /// The version found on disk before any migration (equal to the current
  /// version when nothing was migrated; that of the new database if created).
  uint32_t found_schema_version() const { return found_schema_version_; }
  /// The number of write-ahead-log syncs so far; 0 unless is_counting_syncs.
  uint64_t wal_sync_count() const;

 private:
  rocksdb_store(std::string path, std::unique_ptr<detail::db_handles> db);

  /// A new database in an absent path or empty directory, or the completion
  /// of one whose creation was interrupted (`existing` lists its families).
  static result<std::unique_ptr<rocksdb_store>> create(const std::string& path,
                                                       const std::vector<std::string>* existing,
                                                       const open_options& options);
  /// An existing RocksDB directory: inspect read-only, then open for writing.
  static result<std::unique_ptr<rocksdb_store>> open_existing(const std::string& path,
                                                              const open_options& options);
  /// Checks the table files (detail::check_unlisted_tables; not on a
  /// secondary), reads identity and version; refuses what is damaged, not
  /// Caudal's or too new.
  status inspect(const open_options& options, bool& is_unfinished_creation);
  /// Reads the version; refuses a newer one or an older one that cannot be
  /// migrated (the migration is planned, not written).
  status check_schema_version(const open_options& options);
  /// Writes the identity of a new database and its version, synced.
  status write_identity(uint32_t version);
  /// Migrates from found_schema_version_ to `options.schema_version`.
  status migrate(const open_options& options);

  std::string path_;
  std::string database_id_;
  bool was_created_ = false;
  uint32_t found_schema_version_ = 0;
  std::vector<std::string> families_;  ///< as listed before opening
  std::unique_ptr<detail::db_handles> db_;
};

}  // namespace caudal::storage
