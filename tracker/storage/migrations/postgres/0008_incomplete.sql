-- A sighting closed by the tracker because its closed form never came (the gateway dropped it
-- for space): incomplete. A real closed message arriving later replaces that close and clears
-- the mark (the merge rule in timescale.py). The partial index keeps the close job to open rows.
ALTER TABLE sightings ADD COLUMN incomplete boolean NOT NULL DEFAULT false;
CREATE INDEX sightings_open ON sightings (first_seen) WHERE state = 'open';
