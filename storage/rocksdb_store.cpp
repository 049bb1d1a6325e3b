#include "storage/rocksdb_store.hpp"

#include <filesystem>
#include <system_error>

#include <rocksdb/write_batch.h>

#include "storage/rocksdb_secondary.hpp"
#include "storage/rocksdb_support.hpp"

namespace caudal::storage {
namespace {

namespace fs = std::filesystem;
using detail::open_mode;

std::string in_quotes(const std::string& path) {
  return "'" + path + "'";
}

status not_caudal_rocksdb(const std::string& path, const std::string& why) {
  return status::error(status_code::refused_not_caudal,
                       in_quotes(path) + " is a RocksDB database but not a Caudal one: " + why +
                           " (nothing was changed)");
}

status damaged(const std::string& path, const status& cause) {
  return status::error(
      status_code::refused_damaged,
      in_quotes(path) + " is a damaged database: " + cause.message() + " (nothing was changed)");
}

/// open_secondary of a directory whose creation has not finished.
status being_created(const std::string& path) {
  return status::error(status_code::refused_locked,
                       "database " + in_quotes(path) +
                           " is being created by another process; wait for it to finish "
                           "(nothing was changed)");
}

status closed_status(const std::string& path) {
  return status::error(status_code::closed, "database " + in_quotes(path) + " is closed");
}

/// Read errors: corruption when RocksDB says so (checksums), else I/O.
status read_error(const rocksdb::Status& s, const std::string& path) {
  return detail::from_rocksdb(s, s.IsCorruption() ? status_code::corruption : status_code::io_error,
                              "reading " + in_quotes(path));
}

}  // namespace

rocksdb_store::rocksdb_store(std::string path, std::unique_ptr<detail::db_handles> db)
    : path_(std::move(path)), db_(std::move(db)) {}

rocksdb_store::~rocksdb_store() {
  (void)close();  // documented: errors on implicit close are dropped
}

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open(const std::string& path,
                                                           const open_options& options) {
  result<detail::path_kind> kind = detail::classify_path(path);
  if (!kind) return kind.error();
  if (*kind == detail::path_kind::rocksdb_directory) return open_existing(path, options);
  if (*kind == detail::path_kind::interrupted_creation) {
    // Created over again, unless the creating process is still at it.
    if (status st = detail::probe_lock(path); !st.is_ok()) return st;
  }
  return create(path, nullptr, options);
}

result<std::unique_ptr<rocksdb_store>> rocksdb_store::create(
    const std::string& path, const std::vector<std::string>* existing,
    const open_options& options) {
  if (existing == nullptr) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) {
      return status::error(status_code::io_error,
                           "cannot create directory " + in_quotes(path) + ": " + ec.message());
    }
  }
  auto handles = detail::open_rocksdb(path, existing ? *existing : std::vector<std::string>{},
                                      existing ? open_mode::read_write : open_mode::create,
                                      options.is_counting_syncs);
  if (!handles) return handles.error();
  std::unique_ptr<rocksdb_store> store(new rocksdb_store(path, std::move(*handles)));
  store->database_id_ = new_database_id();
  store->was_created_ = true;
  store->found_schema_version_ = options.schema_version;
  status st = store->write_identity(options.schema_version);
  if (!st.is_ok()) return st;
  return store;
}

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open_existing(const std::string& path,
                                                                    const open_options& options) {
  // The lock first: a read-only instance next to a live writer is undefined
  // behaviour in RocksDB, and "locked" is the truthful answer anyway.
  if (status st = detail::probe_lock(path); !st.is_ok()) return st;
  auto families = detail::list_column_families(path);
  if (!families) return families.error();
  auto read_only = detail::open_rocksdb(path, *families, open_mode::read_only, false);
  if (!read_only) return read_only.error();
  rocksdb_store probe(path, std::move(*read_only));
  probe.families_ = *families;
  bool is_unfinished_creation = false;
  if (status st = probe.inspect(options, is_unfinished_creation); !st.is_ok()) return st;
  if (status st = probe.close(); !st.is_ok()) return damaged(path, st);
  if (is_unfinished_creation) return create(path, &*families, options);

  auto handles =
      detail::open_rocksdb(path, *families, open_mode::read_write, options.is_counting_syncs);
  if (!handles) return handles.error();
  std::unique_ptr<rocksdb_store> store(new rocksdb_store(path, std::move(*handles)));
  store->families_ = std::move(*families);
  store->database_id_ = probe.database_id_;
  store->found_schema_version_ = probe.found_schema_version_;
  if (store->found_schema_version_ < options.schema_version) {
    if (status st = store->migrate(options); !st.is_ok()) return st;
  }
  return store;
}

result<std::unique_ptr<rocksdb_store>> rocksdb_store::open_secondary(const std::string& path,
                                                                     const open_options& options) {
  result<detail::path_kind> kind = detail::classify_path(path);
  if (!kind) return kind.error();
  if (*kind == detail::path_kind::absent) {
    return status::error(status_code::io_error, "there is no database at " + in_quotes(path));
  }
  if (*kind != detail::path_kind::rocksdb_directory) return being_created(path);
  auto families = detail::list_column_families(path);
  if (!families) return families.error();
  auto handles = detail::open_secondary_rocksdb(path, *families);
  if (!handles) return handles.error();
  std::unique_ptr<rocksdb_store> store(new rocksdb_store(path, std::move(*handles)));
  store->families_ = std::move(*families);
  bool is_unfinished_creation = false;
  if (status st = store->inspect(options, is_unfinished_creation); !st.is_ok()) return st;
  if (is_unfinished_creation) return being_created(path);
  if (store->found_schema_version_ < options.schema_version) {
    // Its holder is an older Caudal; the keys are not in the form this code reads.
    return status::error(status_code::refused_locked,
                         "database " + in_quotes(path) +
                             " is locked by another process and has schema version " +
                             std::to_string(store->found_schema_version_) +
                             ", older than version " + std::to_string(options.schema_version) +
                             " that this Caudal reads; only a writer migrates it: wait for that "
                             "process to finish (nothing was changed)");
  }
  return store;
}

status rocksdb_store::inspect(const open_options& options, bool& is_unfinished_creation) {
  // First: a lost table may hold the identity, and "damaged" is then the
  // truthful answer, not "not Caudal's". Not beside a live writer, whose
  // flush in progress writes a table before the MANIFEST lists it.
  if (!db_->is_secondary()) {
    if (status st = detail::check_unlisted_tables(path_, *db_); !st.is_ok()) return st;
  }
  auto no_identity = [&](const char* why) -> status {
    result<bool> unfinished = detail::is_unfinished_creation(path_, *db_, families_);
    if (!unfinished) return damaged(path_, unfinished.error());
    is_unfinished_creation = *unfinished;
    return *unfinished ? status::ok() : not_caudal_rocksdb(path_, why);
  };
  if (db_->handle(column_family::meta) == nullptr) {
    return no_identity("it has no 'meta' column family");
  }
  result<std::string> identity = get(column_family::meta, identity_key);
  if (!identity) {
    if (!identity.error().is_not_found()) return damaged(path_, identity.error());
    return no_identity("its 'meta' column family holds no Caudal identity");
  }
  result<std::string> id = decode_identity(*identity);
  if (!id) return not_caudal_rocksdb(path_, "its identity record is not Caudal's");
  database_id_ = std::move(*id);
  // Caudal creates all its families before it writes the identity, so a
  // missing one means lost MANIFEST records, not an old database.
  if (std::string missing = detail::missing_caudal_families(families_); !missing.empty()) {
    return damaged(path_,
                   status::error(status_code::corruption, "column families missing: " + missing));
  }
  return check_schema_version(options);
}

status rocksdb_store::check_schema_version(const open_options& options) {
  result<uint32_t> version = read_schema_version(*this);
  if (!version) return damaged(path_, version.error());
  found_schema_version_ = *version;
  if (*version > options.schema_version) {
    return status::error(status_code::refused_newer_schema,
                         in_quotes(path_) + " has schema version " + std::to_string(*version) +
                             ", newer than version " + std::to_string(options.schema_version) +
                             " that this Caudal knows; open it with a newer Caudal "
                             "(nothing was changed)");
  }
  if (*version == options.schema_version) return status::ok();
  // Plan the migration here, read-only, so that a migration that cannot run
  // is refused before anything at the path is written.
  write_batch plan;
  status st = plan_migrations(*this, *version, options.schema_version, options.migrations, plan);
  if (!st.is_ok()) return status::error(st.code(), in_quotes(path_) + ": " + st.message());
  return status::ok();
}

status rocksdb_store::write_identity(uint32_t version) {
  write_batch batch;
  batch.put(column_family::meta, std::string(identity_key), encode_identity(database_id_));
  batch.put(column_family::meta, std::string(schema_version_key), encode_schema_version(version));
  return write(batch, true);
}

status rocksdb_store::migrate(const open_options& options) {
  // Planned again on the writable instance: the read-only plan only proved
  // that the migration can run.
  write_batch batch;
  status st = plan_migrations(*this, found_schema_version_, options.schema_version,
                              options.migrations, batch);
  if (st.is_ok()) st = write(batch, true);
  if (st.is_ok()) return st;
  return status::error(status_code::refused_migration, in_quotes(path_) + ": " + st.message());
}

result<std::string> rocksdb_store::get(column_family cf, std::string_view key) {
  if (db_ == nullptr || db_->db == nullptr) return closed_status(path_);
  rocksdb::ColumnFamilyHandle* handle = db_->handle(cf);
  std::string value;
  rocksdb::Status s = handle == nullptr
                          ? rocksdb::Status::NotFound()
                          : db_->db->Get(rocksdb::ReadOptions(), handle,
                                         rocksdb::Slice(key.data(), key.size()), &value);
  if (s.ok()) return value;
  if (s.IsNotFound()) {
    return status::error(status_code::not_found, std::string("not found in ") + to_string(cf));
  }
  return read_error(s, path_);
}

status rocksdb_store::write(const write_batch& batch, bool sync) {
  if (db_ == nullptr || db_->db == nullptr) return closed_status(path_);
  if (db_->is_read_only) {
    return status::error(status_code::invalid_argument,
                         "database " + in_quotes(path_) +
                             " is opened read-only (beside the process that holds it); "
                             "nothing was written");
  }
  if (batch.empty()) return status::ok();
  rocksdb::WriteBatch rocks_batch;
  for (const write_op& op : batch.ops()) {
    rocksdb::ColumnFamilyHandle* handle = db_->handle(op.cf);
    if (handle == nullptr) {
      return status::error(status_code::invalid_argument,
                           std::string("no column family ") + to_string(op.cf));
    }
    rocksdb::Status s = op.op == write_op::kind::put ? rocks_batch.Put(handle, op.key, op.value)
                                                     : rocks_batch.Delete(handle, op.key);
    if (!s.ok()) return detail::from_rocksdb(s, status_code::invalid_argument, "batch");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  rocksdb::Status s = db_->db->Write(write_options, &rocks_batch);
  if (s.ok()) return status::ok();
  return detail::from_rocksdb(s, status_code::io_error, "writing " + in_quotes(path_));
}

status rocksdb_store::scan(column_family cf, std::string_view prefix, const scan_visitor& visit) {
  if (db_ == nullptr || db_->db == nullptr) return closed_status(path_);
  rocksdb::ColumnFamilyHandle* handle = db_->handle(cf);
  if (handle == nullptr) return status::ok();
  const rocksdb::Slice start(prefix.data(), prefix.size());
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), handle));
  for (it->Seek(start); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(start)) break;
    const rocksdb::Slice value = it->value();
    if (!visit(std::string_view(key.data(), key.size()),
               std::string_view(value.data(), value.size()))) {
      break;
    }
  }
  if (!it->status().ok()) return read_error(it->status(), path_);
  return status::ok();
}

status rocksdb_store::close() {
  if (db_ == nullptr || db_->db == nullptr) return status::ok();
  rocksdb::Status s = db_->is_read_only ? rocksdb::Status::OK() : db_->db->FlushWAL(true);
  rocksdb::Status released = db_->release();
  if (s.ok()) s = released;
  if (s.ok()) return status::ok();
  return detail::from_rocksdb(s, status_code::io_error, "closing " + in_quotes(path_));
}

status rocksdb_store::catch_up() {
  if (db_ == nullptr || db_->db == nullptr) return closed_status(path_);
  if (!db_->is_secondary()) return status::ok();
  return detail::catch_up_with_primary(path_, *db_);
}

bool rocksdb_store::is_read_only() const {
  return db_ != nullptr && db_->is_read_only;
}

uint64_t rocksdb_store::wal_sync_count() const {
  if (db_ == nullptr || db_->statistics == nullptr) return 0;
  return db_->statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
}

}  // namespace caudal::storage
