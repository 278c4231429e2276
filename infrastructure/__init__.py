"""What touches the outside world below the read models: the database, the keys, the log and the bus.

``config`` reads the database URL and ``backend_choice`` builds the one ``Backend`` for it (SQLite or
PostgreSQL: ``backend``, ``sqlite_backend``, ``postgres_backend``); the event store's recorders
(``persistence``, ``sqlite_recorder``, ``postgres_recorder``), Writ's own transactions (``database``, ``sql``),
the single-active-worker lock, positions and wake-up. Keys: the vault of per-record data keys and what
seals with them (``vault``, ``key_table``, ``master_keys``, ``sealing``, ``shredding``, ``erasures``), writer
keys. The log as auditors check it: the log chain, the Merkle tree, signed checkpoints and notes, proofs,
witnesses, and ``verification`` (``writ verify``'s walk). ``bus/``: the relay to RabbitMQ and the
``Subscriber``. No command service and no read model here.
"""
