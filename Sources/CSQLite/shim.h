#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro over a cast Swift cannot import; the store passes this instead.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type csqlite_static(void) { return SQLITE_STATIC; }
