-- Recovery runs (issue 17): every run as evidence, and every step's state
-- as the executor goes, so a killed run resumes from what is recorded.
-- Each record is the run's or the step's JSON document; the columns
-- beside it are what lists filter and sort by. Times are milliseconds
-- since the Unix epoch (UTC).
CREATE TABLE recovery_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    record      TEXT    NOT NULL
);

CREATE TABLE recovery_steps (
    run_id      INTEGER NOT NULL REFERENCES recovery_runs (id),
    number      INTEGER NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (run_id, number)
);
