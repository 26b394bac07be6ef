//! Failure classification by what an error says: the text of an error
//! chain (a dump command's stderr, an HTTP body) matched as whole words
//! and phrases against an ordered rule table. Errors with a type are
//! classified by it first (`haven_ops::jobs::classify`); this decides
//! when none does.

use crate::jobs::{Failure, FailureClass, Layer};

fn failure(class: FailureClass, detail: &str, layer: Layer) -> Failure {
    Failure {
        class,
        detail: detail.into(),
        layer,
    }
}

/// Does `text` contain `phrase` as whole words ("hook" is not in
/// "webhooks")?
pub fn mentions(text: &str, phrase: &str) -> bool {
    Words::new(text).contain(phrase)
}

/// One rule of [`by_text`]: any of its phrases in the text gives the
/// failure.
struct Rule {
    class: FailureClass,
    detail: &'static str,
    layer: Layer,
    phrases: &'static [&'static str],
}

/// Rules in order: the first whose phrase occurs wins. Damage is judged
/// before anything but a full disk ("invalid page in block 42" is a
/// corrupt page, not a lock; "authentication failed (data damaged)" is
/// damage, not a password), credentials before connectivity (a refused
/// login arrives over a working connection). Phrases match whole words
/// (see [`Words`]); a trailing `*` matches any word starting so.
const RULES: &[Rule] = &[
    Rule {
        class: FailureClass::Storage,
        detail: "full",
        layer: Layer::Storage,
        phrases: &[
            "no space left",
            "disk full",
            "enospc",
            "insufficient system storage",
            "insufficient storage",
        ],
    },
    Rule {
        class: FailureClass::Storage,
        detail: "quota",
        layer: Layer::Storage,
        phrases: &["quota*", "edquot"],
    },
    Rule {
        class: FailureClass::DataIntegrity,
        detail: "corrupt",
        layer: Layer::Storage,
        phrases: &[
            "corrupt*",
            "checksum*",
            "invalid page",
            "authentication tag",
            "crc error",
            "baddigest",
            "bad digest",
            "hash mismatch",
            "checksum mismatch",
            "marked as crashed",
            "unexpected eof in archive",
            "invalid compressed data",
        ],
    },
    Rule {
        class: FailureClass::Authentication,
        detail: "expired-credentials",
        layer: Layer::Identity,
        phrases: &[
            "expiredtoken",
            "token has expired",
            "expired credentials",
            "credentials have expired",
            "requesttimetooskewed",
        ],
    },
    Rule {
        class: FailureClass::Authentication,
        detail: "credentials-refused",
        layer: Layer::Identity,
        phrases: &[
            "wrong password",
            "password authentication failed",
            "authentication failed",
            "authentication credentials invalid",
            "access denied",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "unauthorized",
            "forbidden",
        ],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "repository-missing",
        layer: Layer::Storage,
        phrases: &["nosuchbucket"],
    },
    Rule {
        class: FailureClass::Connectivity,
        detail: "unreachable",
        layer: Layer::Network,
        phrases: &[
            "connection refused",
            "could not connect",
            "can t connect",
            "cannot connect",
            "connection to server",
            "lost connection",
            "network is unreachable",
            "no route to host",
            "connection reset",
            "name or service not known",
            "could not translate host name",
            "dns error",
            "error sending request",
            "service unavailable",
            "serviceunavailable",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "rate-limited",
        layer: Layer::Storage,
        phrases: &[
            "slowdown",
            "reduce your request rate",
            "too many requests",
            "try again later",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "lock",
        layer: Layer::Compute,
        phrases: &[
            "database is locked",
            "is locked",
            "could not obtain lock",
            "unable to lock",
            "failed to lock",
            "lock timeout",
            "lock wait timeout",
            "deadlock*",
            "locked by another",
            "resource busy",
        ],
    },
    Rule {
        class: FailureClass::Contention,
        detail: "timeout",
        layer: Layer::Network,
        phrases: &["timed out", "timeout", "deadline exceeded"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "version-mismatch",
        layer: Layer::Compute,
        phrases: &["version mismatch", "unsupported version"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "permission-denied",
        layer: Layer::Identity,
        phrases: &["permission denied", "operation not permitted"],
    },
    Rule {
        class: FailureClass::ConfigurationDrift,
        detail: "path-missing",
        layer: Layer::Compute,
        phrases: &["command not found", "no such file or directory"],
    },
];

/// Classify by what the error says, for causes without a type (the
/// output of a dump command, an HTTP body).
pub fn by_text(text: &str) -> Failure {
    let words = Words::new(text);
    RULES
        .iter()
        .find(|rule| rule.phrases.iter().any(|p| words.contain(p)))
        .map(|rule| failure(rule.class, rule.detail, rule.layer))
        .unwrap_or_else(|| failure(FailureClass::Unknown, "unknown", Layer::Compute))
}

/// A text as lowercase words (runs of letters and digits), so that a
/// phrase matches whole words: "lock" is not in "block", "hook" not in
/// "webhooks".
struct Words(Vec<String>);

impl Words {
    fn new(text: &str) -> Self {
        Words(
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect(),
        )
    }

    /// Does the phrase (words separated by spaces; a last character `*`
    /// on a word matches any word it starts) occur?
    fn contain(&self, phrase: &str) -> bool {
        let wanted: Vec<&str> = phrase.split(' ').collect();
        self.0.windows(wanted.len()).any(|window| {
            window
                .iter()
                .zip(&wanted)
                .all(|(word, want)| match want.strip_suffix('*') {
                    Some(prefix) => word.starts_with(prefix),
                    None => word == want,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::FailureClass::*;

    /// What real tools print, classified by what it says. Regressions:
    /// "invalid page in block 42" was lock contention (retried) because
    /// "block" contains "lock"; "webhooks" counted as a hook.
    #[test]
    fn real_messages_are_classified_by_words_not_substrings() {
        let cases: &[(&str, FailureClass, &str)] = &[
            // pg_dump
            (
                "pg_dump: error: connection to server at \"db1\" (10.0.0.5), port 5432 failed: Connection refused",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: connection to server at \"db1\", port 5432 failed: FATAL:  password authentication failed for user \"backup\"",
                Authentication,
                "credentials-refused",
            ),
            (
                "pg_dump: error: query failed: ERROR:  invalid page in block 42 of relation base/16384/16385",
                DataIntegrity,
                "corrupt",
            ),
            (
                "pg_dump: error: query failed: ERROR:  could not obtain lock on relation \"orders\"",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: query failed: ERROR:  deadlock detected",
                Contention,
                "lock",
            ),
            (
                "pg_dump: error: could not write to output file: No space left on device",
                Storage,
                "full",
            ),
            (
                "pg_dump: error: connection to server at \"db1.example\" failed: could not translate host name \"db1.example\" to address: Name or service not known",
                Connectivity,
                "unreachable",
            ),
            (
                "pg_dump: error: query failed: ERROR:  permission denied for table payroll",
                ConfigurationDrift,
                "permission-denied",
            ),
            (
                "pg_dump: error: aborting because of server version mismatch",
                ConfigurationDrift,
                "version-mismatch",
            ),
            (
                "pg_dump: error: query failed: ERROR:  could not read block 7 in file \"base/16384/2619\": read only 0 of 8192 bytes",
                Unknown,
                "unknown",
            ),
            (
                "pg_dump: error: Dumping the contents of table \"blocks\" failed: PQgetResult() failed.",
                Unknown,
                "unknown",
            ),
            // mysqldump
            (
                "mysqldump: Got error: 2002: Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2) when trying to connect",
                Connectivity,
                "unreachable",
            ),
            (
                "mysqldump: Got error: 1045: Access denied for user 'backup'@'localhost' (using password: YES) when trying to connect",
                Authentication,
                "credentials-refused",
            ),
            (
                "mysqldump: Error 2013: Lost connection to MySQL server during query when dumping table `orders` at row: 1234",
                Connectivity,
                "unreachable",
            ),
            (
                "mysqldump: Got error: 145: Table './shop/orders' is marked as crashed and should be repaired when using LOCK TABLES",
                DataIntegrity,
                "corrupt",
            ),
            (
                "mysqldump: Error 1205: Lock wait timeout exceeded; try restarting transaction",
                Contention,
                "lock",
            ),
            (
                "mysqldump: Got error: 1044: Access denied for user 'backup'@'%' to database 'shop' when using LOCK TABLES",
                Authentication,
                "credentials-refused",
            ),
            (
                "mysqldump: Couldn't execute 'FLUSH TABLES WITH READ LOCK': Lock wait timeout exceeded",
                Contention,
                "lock",
            ),
            // tar, gzip
            (
                "tar: /srv/data: Cannot open: Permission denied",
                ConfigurationDrift,
                "permission-denied",
            ),
            (
                "tar: /srv/missing: Cannot stat: No such file or directory",
                ConfigurationDrift,
                "path-missing",
            ),
            ("tar: Unexpected EOF in archive", DataIntegrity, "corrupt"),
            (
                "gzip: stdin: invalid compressed data--crc error",
                DataIntegrity,
                "corrupt",
            ),
            (
                "tar: /backup/x.tar: Wrote only 4096 of 10240 bytes: No space left on device",
                Storage,
                "full",
            ),
            (
                "sh: 1: xtrabackup: command not found",
                ConfigurationDrift,
                "path-missing",
            ),
            // S3
            (
                "S3 said: ExpiredToken: The provided token has expired",
                Authentication,
                "expired-credentials",
            ),
            (
                "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.",
                Authentication,
                "credentials-refused",
            ),
            (
                "SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided",
                Authentication,
                "credentials-refused",
            ),
            (
                "SlowDown: Please reduce your request rate.",
                Contention,
                "rate-limited",
            ),
            (
                "RequestTimeTooSkewed: The difference between the request time and the current time is too large.",
                Authentication,
                "expired-credentials",
            ),
            (
                "NoSuchBucket: The specified bucket does not exist",
                ConfigurationDrift,
                "repository-missing",
            ),
            (
                "error sending request for url (https://s3.example:9000/backups/config): client error (Connect)",
                Connectivity,
                "unreachable",
            ),
            (
                "ServiceUnavailable: Service is unable to handle request",
                Connectivity,
                "unreachable",
            ),
            (
                "QuotaExceeded: The bucket quota has been exceeded",
                Storage,
                "quota",
            ),
            (
                "BadDigest: The Content-MD5 you specified did not match what we received.",
                DataIntegrity,
                "corrupt",
            ),
            (
                "InternalError: We encountered an internal error. Please try again.",
                Unknown,
                "unknown",
            ),
            // SMTP
            (
                "SMTP error: 535 5.7.8 Authentication credentials invalid",
                Authentication,
                "credentials-refused",
            ),
            (
                "SMTP error: 421 4.7.0 Try again later, closing connection",
                Contention,
                "rate-limited",
            ),
            (
                "Connection error: Connection refused (os error 111)",
                Connectivity,
                "unreachable",
            ),
            (
                "SMTP error: 452 4.3.1 Insufficient system storage",
                Storage,
                "full",
            ),
            (
                "SMTP error: 550 5.1.1 <ops@example.com>: Recipient address rejected: User unknown in blocklist",
                Unknown,
                "unknown",
            ),
            // SQLite, the engine's text, webhooks
            (
                "error returned from database: (code: 5) database is locked",
                Contention,
                "lock",
            ),
            (
                "corrupt blob 1a2b3c4d in pack: authentication failed (data damaged or wrong key)",
                DataIntegrity,
                "corrupt",
            ),
            (
                "the webhook https://hooks.example/notify answered 503 Service Unavailable",
                Connectivity,
                "unreachable",
            ),
            (
                "operation timed out after 30s waiting for the blocklist",
                Contention,
                "timeout",
            ),
        ];
        assert!(cases.len() >= 40);
        for (message, class, detail) in cases {
            let got = by_text(message);
            assert_eq!(
                (got.class, got.detail.as_str()),
                (*class, *detail),
                "{message}"
            );
        }
    }
}
