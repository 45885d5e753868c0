-- One row per sighting id, whatever first_seen a later message claims (tracker/storage/
-- one_row.py): the unique key becomes the sighting id alone (SQLite has no hypertable
-- constraint to satisfy). SQLite cannot change a table's constraints: the table is rebuilt.

CREATE TABLE sightings_new (
    gateway_id    TEXT    NOT NULL,
    spool_id      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    tag_id        TEXT    NOT NULL,
    tag_kind      TEXT    NOT NULL,
    tag_type      INTEGER,
    reader_id     TEXT    NOT NULL,
    antenna       INTEGER,
    antennas      TEXT    NOT NULL DEFAULT '[]',
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    reads         INTEGER NOT NULL,
    rssi_max_dbm  REAL,
    rssi_max_raw  INTEGER,
    flags         TEXT    NOT NULL DEFAULT '[]',
    reader_time   INTEGER,
    stored_at     INTEGER NOT NULL,
    UNIQUE (gateway_id, spool_id, seq)
);

-- Rows stored before this migration under one id with several first_seen values (the bug
-- this fixes) become one: kept is the row the merge rule takes as its base (closed beats
-- open; then the first stored), as on PostgreSQL.
INSERT INTO sightings_new
SELECT gateway_id, spool_id, seq, state, tag_id, tag_kind, tag_type, reader_id, antenna,
       antennas, first_seen, last_seen, reads, rssi_max_dbm, rssi_max_raw, flags, reader_time,
       stored_at
FROM (SELECT *, row_number() OVER (PARTITION BY gateway_id, spool_id, seq
                                   ORDER BY state = 'closed' DESC, stored_at, first_seen) AS n
      FROM sightings)
WHERE n = 1;

DROP TABLE sightings;
ALTER TABLE sightings_new RENAME TO sightings;
CREATE INDEX sightings_tag_time ON sightings (tag_id, first_seen);
CREATE INDEX sightings_reader_time ON sightings (reader_id, first_seen);
CREATE INDEX sightings_time ON sightings (first_seen);
