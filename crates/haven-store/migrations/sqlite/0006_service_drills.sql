-- Drills of services (issue 16): a service's systems drilled wave by wave
-- and timed as a whole. The record is the JSON document (waves, the
-- system drills' numbers, measurements, reasons); the columns beside it
-- are what lists filter and sort by. Times are milliseconds since the Unix
-- epoch (UTC).
CREATE TABLE service_drills (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    service     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    verdict     TEXT    NOT NULL,
    record      TEXT    NOT NULL
);
CREATE INDEX service_drills_by_service ON service_drills (service, started_at);
