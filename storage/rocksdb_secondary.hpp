#pragma once
/// Reading a RocksDB database while another process holds it: RocksDB's
/// secondary instance (DB::OpenAsSecondary), which takes no LOCK, writes
/// nothing in the database directory, replays the holder's MANIFEST and
/// write-ahead logs, and follows them on TryCatchUpWithPrimary().
/// Internal to storage/: `rocksdb_store::open_secondary` is built on it.
///
/// What RocksDB 7.8.3 does (verified by experiment, see
/// docs/spec-notes.md "Journal"):
/// - a secondary sees every record the holder wrote to its write-ahead log
///   before the open or catch-up, flushed to a table or not, synced or not;
/// - it keeps the table files it opened (max_open_files = -1), so the
///   holder's compactions do not pull them away between catch-ups;
/// - a holder that closes, is killed, or is reopened (a new MANIFEST)
///   between catch-ups does not disturb it;
/// - a catch-up (or the open) during which the holder finished a flush and
///   deleted a write-ahead log silently skips that log's records that are
///   not yet in its view (RocksDB: "WAL file(s) have already been purged by
///   primary"), while later records are there: the view has a hole until
///   the next catch-up reads the flush's table from the MANIFEST.
///
/// Thread-safety: free functions; the handles are owned by one caller.

#include <memory>
#include <string>
#include <vector>

#include "storage/kv_store.hpp"
#include "storage/rocksdb_support.hpp"

namespace caudal::storage::detail {

/// How many times a secondary open or catch-up is tried before giving up.
inline constexpr int secondary_attempts = 10;

/// Opens the database at `path`, all of its column families `existing` (as
/// listed), as a secondary with its info log in a fresh directory under the
/// system temp dir (removed when the handles are released), then catches up
/// (catch_up_with_primary). The result is read-only (`is_read_only`).
/// Errors: `refused_damaged` when the last attempt reports corruption,
/// `io_error` otherwise; messages name `path`.
result<std::unique_ptr<db_handles>> open_secondary_rocksdb(
    const std::string& path, const std::vector<std::string>& existing);

/// Brings the secondary `handles` (opened on `path`) up to what the holder
/// has written, without holes: a catch-up during which a write-ahead log
/// vanished may have skipped part of it, so it is followed by another, until
/// one runs while no log vanishes. The holes RocksDB leaves are closed by the
/// next catch-up, since the holder records a flush's table in the MANIFEST
/// before it deletes the log. Not detected: a log created and deleted within
/// one catch-up (a memtable filled and flushed in milliseconds; Caudal's
/// journal writes far too little for that). Errors: `io_error` (or
/// `refused_damaged` for corruption) when every attempt failed or saw a log
/// vanish.
status catch_up_with_primary(const std::string& path, db_handles& handles);

}  // namespace caudal::storage::detail
