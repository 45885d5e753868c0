-- Sightings: one row per sighting id (plus first_seen, which a hypertable's unique key must
-- hold; the gateway keeps first_seen stable for one id, so open and closed share the row).
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE sightings (
    gateway_id    text        NOT NULL,
    spool_id      text        NOT NULL,
    seq           bigint      NOT NULL,
    state         text        NOT NULL CHECK (state IN ('open', 'closed')),
    tag_id        text        NOT NULL,
    tag_kind      text        NOT NULL,
    tag_type      integer,
    reader_id     text        NOT NULL,
    antenna       smallint,
    antennas      smallint[]  NOT NULL DEFAULT '{}',
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    reads         bigint      NOT NULL,
    rssi_max_dbm  double precision,
    rssi_max_raw  integer,
    flags         text[]      NOT NULL DEFAULT '{}',
    reader_time   timestamptz,
    stored_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sightings_id UNIQUE (gateway_id, spool_id, seq, first_seen)
);

-- No default time index: every query names a tag or a reader, and chunk exclusion serves the
-- bare time ranges of the learning jobs; one index less keeps ingest fast.
SELECT create_hypertable('sightings', by_range('first_seen', INTERVAL '1 day'),
                         create_default_indexes => false);

CREATE INDEX sightings_tag_time ON sightings (tag_id, first_seen DESC);
CREATE INDEX sightings_reader_time ON sightings (reader_id, first_seen DESC);

-- Evidence: the same columns, an ordinary table retention never touches.
CREATE TABLE evidence_sightings (
    LIKE sightings INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    copied_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evidence_sightings_id UNIQUE (gateway_id, spool_id, seq, first_seen)
);
CREATE INDEX evidence_sightings_tag_time ON evidence_sightings (tag_id, first_seen);

-- The merge rule's two list unions (pak.types.merge_sightings), used by the upsert.
-- Antennas: a's list, then b's antennas a lacks, in b's order, each once.
CREATE FUNCTION pak_antenna_union(a smallint[], b smallint[]) RETURNS smallint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b <@ a THEN a ELSE a || ARRAY(
        SELECT x FROM unnest(b) WITH ORDINALITY AS t(x, o)
        WHERE x <> ALL (a) GROUP BY x ORDER BY min(o)) END
$$;

-- Flags: the sorted union (code-point order, as Python's sorted()).
CREATE FUNCTION pak_flag_union(a text[], b text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT DISTINCT f COLLATE "C" FROM unnest(a || b) AS t(f) ORDER BY 1)
$$;
