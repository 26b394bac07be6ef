-- Drills (issue 16): every drill as evidence. The record is the drill's
-- JSON document (steps, checks, measurements, reasons); the columns beside
-- it are what lists filter and sort by. Times are milliseconds since the
-- Unix epoch (UTC).
CREATE TABLE drills (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    system      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX drills_by_system ON drills (system, started_at);
