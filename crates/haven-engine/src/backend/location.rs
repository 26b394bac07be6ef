//! Repository locations as users write them: a directory, `local:PATH`,
//! or `s3:http(s)://host:port/bucket/prefix`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a repository lives, parsed from the user's `--repo` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory (`/path`, `./path` or `local:/path`).
    Local(PathBuf),
    /// An S3-compatible bucket: `s3:http(s)://host:port/bucket/prefix`.
    S3 {
        /// `http(s)://host:port`.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parse a repository location.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            location: input.to_string(),
            reason: reason.to_string(),
        };
        if input.trim().is_empty() {
            return Err(invalid("it is empty; give a directory path"));
        }
        if let Some(rest) = input.strip_prefix("s3:") {
            return parse_s3(input, rest);
        }
        if let Some(path) = input.strip_prefix("local:") {
            if path.is_empty() {
                return Err(invalid("`local:` needs a path after it"));
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = input.split_once(':')
            && !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
            && !Path::new(input).exists()
        {
            return Err(invalid(&format!(
                "unknown scheme `{scheme}:`; use a directory path, `local:PATH` or `s3:http(s)://host:port/bucket/prefix`"
            )));
        }
        Ok(Location::Local(PathBuf::from(input)))
    }
}

fn parse_s3(input: &str, rest: &str) -> Result<Location> {
    let invalid = |reason: &str| Error::InvalidLocation {
        location: input.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, after) = rest
        .split_once("://")
        .ok_or_else(|| invalid("expected s3:http(s)://host:port/bucket/prefix"))?;
    if scheme != "http" && scheme != "https" {
        return Err(invalid("the endpoint must start with http:// or https://"));
    }
    let (host, path) = after.split_once('/').unwrap_or((after, ""));
    if host.is_empty() {
        return Err(invalid("the endpoint has no host"));
    }
    let mut parts = path.splitn(2, '/');
    let bucket = parts.next().unwrap_or_default();
    let prefix = parts.next().unwrap_or_default().trim_matches('/');
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(invalid(&format!(
            "{bucket:?} is not a bucket name (3-63 characters: a-z, 0-9, '-', '.')"
        )));
    }
    Ok(Location::S3 {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{endpoint}/{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("/srv/repo").expect("path"),
            Location::Local("/srv/repo".into())
        );
        assert_eq!(
            Location::parse("local:rel/dir").expect("local"),
            Location::Local("rel/dir".into())
        );
        let err = Location::parse("ftp://host/x").expect_err("unknown scheme");
        assert!(err.to_string().contains("unknown scheme `ftp:`"), "{err}");
        assert!(Location::parse("").is_err());
        assert_eq!(
            Location::parse("s3:https://minio.local:9000/backups/site-a/db").expect("s3"),
            Location::S3 {
                endpoint: "https://minio.local:9000".into(),
                bucket: "backups".into(),
                prefix: "site-a/db".into(),
            }
        );
        for bad in [
            "s3:minio/bucket",
            "s3:ftp://h/b",
            "s3:http:///b",
            "s3:http://h/",
            "s3:http://h/UPPER",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad} must be rejected");
        }
        assert!(Location::parse("local:").is_err());
    }
}
