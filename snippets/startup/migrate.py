"""Schema migrations, each applied once, in order. Run it as a step before the servers start:

    DATABASE_URL=postgresql://... python migrate.py

It takes a PostgreSQL advisory lock first, so copies that start at the same time (one per
replica, one per pod) take turns: the first applies what is pending, the others then find
nothing left to do.
"""

import os

import psycopg

MIGRATIONS = {
    1: "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)",
    2: "ALTER TABLE items ADD COLUMN price_cents integer NOT NULL DEFAULT 0",
}
#: Stands in for a migration that takes a while (a backfill, an index on a big table).
SLOW_STEP = "SELECT pg_sleep(2)"
#: Any 64-bit number, the same in every process that migrates this database.
LOCK_KEY = 7_242_001


def apply_pending(conn: psycopg.Connection) -> list[int]:
    """Apply, each in its own transaction, the migrations the database has not recorded."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)")
    done = {version for (version,) in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for version, sql in sorted(MIGRATIONS.items()):
        if version in done:
            continue
        with conn.transaction():
            conn.execute(sql)
            conn.execute(SLOW_STEP)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        applied.append(version)
    return applied


def migrate(url: str) -> list[int]:
    """apply_pending, holding the advisory lock: one process migrates, the others wait."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))  # waits for the holder
        try:
            return apply_pending(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


if __name__ == "__main__":
    applied = migrate(os.environ["DATABASE_URL"])
    print(f"process {os.getpid()} applied migrations: {applied or 'none, already up to date'}")
