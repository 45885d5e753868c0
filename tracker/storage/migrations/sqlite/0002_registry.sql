-- Readers, vehicles and which tag a vehicle carried when.
CREATE TABLE readers (
    reader_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    latitude    REAL NOT NULL,
    longitude   REAL NOT NULL,
    bearings    TEXT NOT NULL DEFAULT '{}',   -- {"1": 90.0, ...}: antenna -> degrees
    timezone    TEXT
);

CREATE TABLE vehicles (
    vehicle_id          TEXT PRIMARY KEY,
    plate               TEXT NOT NULL,
    owner               TEXT,
    kind                TEXT,
    colour              TEXT,
    key_tag_id          TEXT,
    unaccompanied_check INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX vehicles_plate ON vehicles (plate);

CREATE TABLE tag_assignments (
    tag_id      TEXT NOT NULL,
    vehicle_id  TEXT NOT NULL REFERENCES vehicles (vehicle_id),
    valid_from  INTEGER NOT NULL,
    valid_to    INTEGER,
    PRIMARY KEY (tag_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX tag_assignments_vehicle ON tag_assignments (vehicle_id, valid_from);
