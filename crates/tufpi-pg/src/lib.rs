//! tufpi-pg: PostgreSQL for tufpi's scale-out mode — connections, a pool, versioned schema
//! migrations and the publisher lease whose term fences a writer that lost it.
