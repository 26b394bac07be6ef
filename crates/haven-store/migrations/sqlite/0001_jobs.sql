-- Job evidence and the state derived from it. Times are milliseconds
-- since the Unix epoch (UTC).

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    system           TEXT,
    backup_set       TEXT,
    policy           TEXT,
    repository       TEXT,
    trigger          TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    scheduled_at     INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER,
    outcome          TEXT    NOT NULL,
    files_new        INTEGER NOT NULL DEFAULT 0,
    files_changed    INTEGER NOT NULL DEFAULT 0,
    files_unmodified INTEGER NOT NULL DEFAULT 0,
    bytes_changed    INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER NOT NULL DEFAULT 0,
    bytes_added      INTEGER NOT NULL DEFAULT 0,
    snapshot_id      TEXT,
    failure_class    TEXT,
    failure_detail   TEXT,
    failure_layer    TEXT,
    message          TEXT,
    log              TEXT    NOT NULL DEFAULT ''
);

-- The store itself refuses a second running job of one task.
CREATE UNIQUE INDEX jobs_one_running_per_task ON jobs (task) WHERE outcome = 'running';
CREATE INDEX jobs_by_system ON jobs (system, id);
CREATE INDEX jobs_by_outcome ON jobs (outcome, id);
CREATE INDEX jobs_by_scheduled ON jobs (scheduled_at);

-- One row per backup set: the evidence compliance is computed from,
-- updated in the same transaction as the job that changes it.
CREATE TABLE set_states (
    system         TEXT    NOT NULL,
    backup_set     TEXT    NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_good_at   INTEGER,
    last_good_job  INTEGER,
    last_snapshot  TEXT,
    last_outcome   TEXT,
    failure_streak INTEGER NOT NULL DEFAULT 0,
    streak_class   TEXT,
    systemic       INTEGER NOT NULL DEFAULT 0,
    config         TEXT    NOT NULL,
    PRIMARY KEY (system, backup_set)
);

-- The last scheduled time each task was dispatched for: after downtime
-- the scheduler catches up once from here instead of replaying every
-- missed time.
CREATE TABLE schedule_marks (
    task TEXT    PRIMARY KEY,
    slot INTEGER NOT NULL
);
