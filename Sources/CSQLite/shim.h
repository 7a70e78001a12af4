#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro over a cast Swift cannot import; the store passes this instead.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type csqlite_static(void) { return SQLITE_STATIC; }

// sqlite3_config is variadic, which Swift cannot call. Turning memory statistics off removes a
// global mutex from every allocation SQLite makes; it must run before the first connection opens.
static inline int csqlite_disable_memory_statistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
