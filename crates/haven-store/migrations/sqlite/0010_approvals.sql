-- Four-eyes requests (issue 18): changes waiting for a second person,
-- and break-glass changes waiting for review. Each record is the
-- request's JSON document (never a secret); the columns beside it are
-- what lists sort by and what a decision compares against, so two
-- approvers cannot both decide one request. Times are milliseconds since
-- the Unix epoch (UTC).
CREATE TABLE approval_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    requested_at  INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    record        TEXT    NOT NULL
);
