"""SQLite's own floor for the orders table's unique key, with no importer around it.

Issue #22 asked whether an integer key (a hash of the order's external id) instead of the text
`UNIQUE` index would lift the 1,000,000 rows/s import. This copies N orders, already in the
database, into an `orders` table of each candidate schema with one `INSERT ... SELECT` in one
transaction (WAL, `synchronous=FULL`, a 64 MiB cache, as tiercare opens its database) and
prints the CPU time of the copy and its checkpoint:

- `text`: tiercare's schema, `external_id TEXT NOT NULL UNIQUE`;
- `hash-unique`: a 64-bit BLAKE2b hash of the id beside it, `UNIQUE (key, external_id)`;
- `hash-index`: the hash with a plain index (uniqueness left to the importer);
- `none`: no index on the id at all (what no key costs).

Every variant also has `(customer_id, ordered_at)`, as tiercare does. The ids are what the demo
generates (`O000000001`, in file order), so the text index is appended to in order while any
hash scatters its inserts over the whole B-tree.

    python3 crates/bench/python/orders_key_floor.py 3000000 /tmp/floor
"""

import hashlib
import os
import random
import sqlite3
import struct
import sys
import time

SCHEMAS = {
    "text": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, external_id TEXT NOT NULL UNIQUE, "
        "customer_id INTEGER NOT NULL, ordered_at INTEGER NOT NULL, amount INTEGER NOT NULL)",
        "INSERT INTO orders (external_id, customer_id, ordered_at, amount) "
        "SELECT ext, cust, at, amount FROM source",
    ),
    "hash-unique": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, key INTEGER NOT NULL, "
        "external_id TEXT NOT NULL, customer_id INTEGER NOT NULL, ordered_at INTEGER NOT NULL, "
        "amount INTEGER NOT NULL, UNIQUE (key, external_id))",
        "INSERT INTO orders (key, external_id, customer_id, ordered_at, amount) "
        "SELECT key, ext, cust, at, amount FROM source",
    ),
    "hash-index": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, key INTEGER NOT NULL, "
        "external_id TEXT NOT NULL, customer_id INTEGER NOT NULL, ordered_at INTEGER NOT NULL, "
        "amount INTEGER NOT NULL); CREATE INDEX orders_by_key ON orders (key)",
        "INSERT INTO orders (key, external_id, customer_id, ordered_at, amount) "
        "SELECT key, ext, cust, at, amount FROM source",
    ),
    "none": (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, external_id TEXT NOT NULL, "
        "customer_id INTEGER NOT NULL, ordered_at INTEGER NOT NULL, amount INTEGER NOT NULL)",
        "INSERT INTO orders (external_id, customer_id, ordered_at, amount) "
        "SELECT ext, cust, at, amount FROM source",
    ),
}


def open_fresh(path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536", "foreign_keys=OFF"):
        db.execute("PRAGMA " + pragma)
    return db


def main():
    n = int(sys.argv[1])
    folder = sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(22)
    rows = []
    for i in range(n):
        ext = "O%09d" % (i + 1)
        key = struct.unpack("<q", hashlib.blake2b(ext.encode(), digest_size=8).digest())[0]
        rows.append((ext, 1 + i // 10, 1_600_000_000 + rng.randrange(10**7), rng.randrange(10**5), key))
    print(f"SQLite {sqlite3.sqlite_version}, {n:,} orders")
    for name, (create, copy) in SCHEMAS.items():
        db = open_fresh(os.path.join(folder, name + ".db"))
        db.execute("CREATE TABLE source (ext TEXT, cust INTEGER, at INTEGER, amount INTEGER, key INTEGER)")
        db.execute("BEGIN")
        db.executemany("INSERT INTO source VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        db.executescript(create)
        db.execute("CREATE INDEX orders_by_customer ON orders (customer_id, ordered_at)")
        cpu, wall = time.process_time(), time.time()
        db.execute("BEGIN")
        db.execute(copy)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cpu, wall = time.process_time() - cpu, time.time() - wall
        print(f"{name:12} CPU {cpu:6.2f} s  wall {wall:6.2f} s  {n / cpu:>12,.0f} rows/s of CPU")
        db.close()


if __name__ == "__main__":
    main()
