-- Readers, vehicles and which tag a vehicle carried when.
CREATE TABLE readers (
    reader_id   text PRIMARY KEY,
    name        text NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    bearings    jsonb NOT NULL DEFAULT '{}',   -- {"1": 90.0, ...}: antenna -> degrees
    timezone    text
);

CREATE TABLE vehicles (
    vehicle_id          text PRIMARY KEY,
    plate               text NOT NULL,
    owner               text,
    kind                text,
    colour              text,
    key_tag_id          text,
    unaccompanied_check boolean NOT NULL DEFAULT false
);
CREATE INDEX vehicles_plate ON vehicles (plate);
CREATE INDEX vehicles_key_tag ON vehicles (key_tag_id) WHERE key_tag_id IS NOT NULL;

CREATE TABLE tag_assignments (
    tag_id      text NOT NULL,
    vehicle_id  text NOT NULL REFERENCES vehicles (vehicle_id),
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    PRIMARY KEY (tag_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX tag_assignments_vehicle ON tag_assignments (vehicle_id, valid_from);
