-- Alerts, notification deliveries and maintenance windows (issue 6).
-- Times are milliseconds since the Unix epoch (UTC).

-- How full the repository was after the job (capacity forecasts).
ALTER TABLE jobs ADD COLUMN repository_bytes INTEGER;
CREATE INDEX jobs_by_repository ON jobs (repository, ended_at) WHERE repository_bytes IS NOT NULL;

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    service         TEXT,
    tier            INTEGER,
    system          TEXT,
    backup_set      TEXT,
    repository      TEXT,
    summary         TEXT    NOT NULL,
    facts           TEXT    NOT NULL DEFAULT '{}',
    state           TEXT    NOT NULL,
    condition_since INTEGER NOT NULL,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    occurrences     INTEGER NOT NULL,
    evidence        TEXT,
    suppressed_by   TEXT,
    notified_at     INTEGER,
    escalation      TEXT,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    resolved_at     INTEGER,
    resolved_by     TEXT,
    resolution      TEXT
);

-- One active alert per condition: the store refuses a second.
CREATE UNIQUE INDEX alerts_one_active_per_key ON alerts (key) WHERE state != 'resolved';
CREATE INDEX alerts_by_state ON alerts (state, id);
CREATE INDEX alerts_by_service ON alerts (service, id);

-- Every delivery attempt of every notification.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    INTEGER REFERENCES alerts (id),
    channel     TEXT    NOT NULL,
    channel_type TEXT   NOT NULL,
    step        INTEGER,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX deliveries_by_alert ON deliveries (alert_id, id);

-- Maintenance windows added at run time (`haven maintenance add`), and
-- catalog windows ended early (`window` names the catalog window; the
-- row's start is the occurrence it ends).
CREATE TABLE maintenance (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    window       TEXT,
    services     TEXT    NOT NULL DEFAULT '[]',
    systems      TEXT    NOT NULL DEFAULT '[]',
    repositories TEXT    NOT NULL DEFAULT '[]',
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    reason       TEXT,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
