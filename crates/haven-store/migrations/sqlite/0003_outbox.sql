-- Notifications on their way (issue 6): a row from the moment a
-- notification is queued until a channel took it or every channel failed,
-- so a server stopped mid-delivery (during a retry's backoff) resumes it.
-- Times are milliseconds since the Unix epoch (UTC).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    step        INTEGER,
    channels    TEXT    NOT NULL,  -- JSON array, failover order
    channel     INTEGER NOT NULL,  -- index of the channel to try next
    attempt     INTEGER NOT NULL,  -- its next attempt, 1 = first try
    not_before  INTEGER NOT NULL,  -- a retry's backoff
    queued_at   INTEGER NOT NULL
);
