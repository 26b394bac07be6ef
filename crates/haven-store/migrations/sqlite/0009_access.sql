-- Identities (issue 18): local users and API tokens. Each record is the
-- JSON document (a user's argon2id password hash, a token's SHA-256
-- secret hash: never a secret in clear); the columns beside it are what
-- lookups use.
CREATE TABLE users (
    name    TEXT PRIMARY KEY,
    record  TEXT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL
);
