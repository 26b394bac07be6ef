-- The audit log (issue 18): append-only at the store level too. Each row
-- is one entry (its JSON document, the number it carries, and its leaf
-- hash in the Merkle tree); checkpoints are the signed tree heads.
-- Triggers refuse UPDATE and DELETE on both: only an INSERT adds, and
-- nothing takes away. (Someone with the database file can drop the
-- triggers; the signed checkpoints, kept outside the database as well,
-- are what makes that detectable.)
CREATE TABLE audit_entries (
    seq     INTEGER PRIMARY KEY,
    leaf    BLOB    NOT NULL,
    record  TEXT    NOT NULL
);

CREATE TABLE audit_checkpoints (
    size    INTEGER PRIMARY KEY,
    note    TEXT    NOT NULL
);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
