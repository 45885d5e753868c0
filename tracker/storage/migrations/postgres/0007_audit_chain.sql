-- The audit log becomes append-only and hash-chained: each record keeps the role and client
-- address of the caller, the hash of the record before it and its own hash
-- (tracker/storage/audit_chain.py says what is hashed). Records from before this migration
-- have no hash; the chain starts at the first record written after it.
ALTER TABLE audit_log
    ADD COLUMN role text,
    ADD COLUMN client text,
    ADD COLUMN prev_hash text,
    ADD COLUMN hash text;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
