-- Logins (issue 18): console sessions (each record the session's JSON
-- document with the SHA-256 of its secret, never the secret), and failed
-- logins, counted for the `security` alert on bursts. Times are
-- milliseconds since the Unix epoch (UTC).
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL
);

CREATE TABLE login_failures (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    account  TEXT    NOT NULL,
    origin   TEXT    NOT NULL
);

CREATE INDEX login_failures_at ON login_failures (at);
