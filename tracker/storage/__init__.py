"""Storage of the centre: one interface (base.Storage), two backends (SQLite, TimescaleDB)."""
