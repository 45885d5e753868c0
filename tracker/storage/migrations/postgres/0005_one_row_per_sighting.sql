-- One row per sighting id, whatever first_seen a later message claims (tracker/storage/
-- one_row.py). A hypertable's unique index must hold its time column, so the id alone is
-- made unique in an ordinary table beside it, holding each id's first stored first_seen. The
-- batch write claims its ids here first, in the same statement, and writes every sighting
-- under the claimed time, so the hypertable's key (id, first_seen) always meets the one row.

-- Rows stored before this migration under one id with several first_seen values (the bug
-- this fixes) become one: kept is the row the merge rule takes as its base (closed beats
-- open; then the first stored), the others are deleted.
DELETE FROM sightings s USING (
    SELECT gateway_id, spool_id, seq, first_seen,
           row_number() OVER (PARTITION BY gateway_id, spool_id, seq
                              ORDER BY (state = 'closed') DESC, stored_at, first_seen) AS n
    FROM sightings
    WHERE (gateway_id, spool_id, seq) IN (SELECT gateway_id, spool_id, seq FROM sightings
                                          GROUP BY 1, 2, 3 HAVING count(*) > 1)
) d
WHERE d.n > 1 AND s.gateway_id = d.gateway_id AND s.spool_id = d.spool_id
  AND s.seq = d.seq AND s.first_seen = d.first_seen;

CREATE TABLE sighting_ids (
    gateway_id  text        NOT NULL,
    spool_id    text        NOT NULL,
    seq         bigint      NOT NULL,
    first_seen  timestamptz NOT NULL,
    CONSTRAINT sighting_ids_pkey PRIMARY KEY (gateway_id, spool_id, seq)
);

INSERT INTO sighting_ids (gateway_id, spool_id, seq, first_seen)
SELECT gateway_id, spool_id, seq, first_seen FROM sightings;

-- Retention deletes the ids of dropped chunks by first_seen. Ids arrive roughly in time
-- order, so a BRIN index finds the old ones at next to no cost per insert.
CREATE INDEX sighting_ids_first_seen ON sighting_ids USING brin (first_seen);
