/* store_schema.c -- the schema and its migrations, one step per version (PRAGMA user_version).
 * A database newer than this binary knows is refused rather than guessed at. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

/* migrations[v] takes a database from version v to v + 1 */
static const char *const migrations[AIP_STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: rate-limit buckets */
    "CREATE TABLE rate_buckets ("
    "  agent TEXT NOT NULL, tool TEXT NOT NULL, tokens REAL NOT NULL, last_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (agent, tool));",
    /* 1 -> 2: the approval queue */
    "CREATE TABLE approvals ("
    "  id TEXT PRIMARY KEY, agent TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL,"
    "  arguments TEXT NOT NULL, args_hash TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, status INTEGER NOT NULL,"
    "  decided_by TEXT, decided_ms INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    "  used_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX approvals_by_status ON approvals (status, created_ms);"
    "CREATE INDEX approvals_by_call ON approvals (agent, tool, args_hash, status);",
};

static int user_version(sqlite3 *db, int *v) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -EIO;
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
  *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc;
}

int aip_store_migrate(sqlite3 *db, aip_error *err) {
  int v;
  if (user_version(db, &v))
    return aip_error_set(err, -EIO, "cannot read the schema version: %s", sqlite3_errmsg(db));
  if (v > AIP_STORE_SCHEMA_VERSION)
    return aip_error_set(err, -EPROTO, "schema version %d is newer than this aip (%d)", v,
                         AIP_STORE_SCHEMA_VERSION);
  for (; v < AIP_STORE_SCHEMA_VERSION; v++) {
    char sql[2048];
    snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; %s PRAGMA user_version=%d; COMMIT;",
             migrations[v], v + 1);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
      aip_error_set(err, -EIO, "migration to schema %d failed: %s", v + 1, msg ? msg : "?");
      sqlite3_free(msg);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return -EIO;
    }
  }
  return 0;
}

char *aip_store__strdup_col(sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  return t ? strdup((const char *)t) : NULL;
}
