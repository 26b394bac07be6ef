//! Secrets written where they should not be: a password in a URL's
//! userinfo, a `--password=…` option, mysql's `-p…`, an assignment to a
//! secret-looking name (`PGPASSWORD=…`, `api_token=…`, libpq's
//! `password=…`). [`mask`] hides their values (`***`) in any text before
//! it is logged, stored, exported or sent; [`secret_on_command_line`]
//! tells the catalog check that a command carries one literally.
//!
//! Values Haven itself resolved (from `env:`/`file:` references) are
//! redacted by value elsewhere (`haven_ops::instance::redact`); this module needs no
//! list: it recognises the shapes.

use std::borrow::Cow;

/// What masked values are replaced with.
pub const MASK: &str = "***";

/// Names whose assigned value is a secret (matched without case, as the
/// whole name or its last `_`/`-` separated part: `PGPASSWORD`,
/// `MYSQL_PWD`, `AWS_SECRET_ACCESS_KEY`, `api-token`).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "apikey",
    "api_key",
    "accesskey",
    "access_key",
    "secretkey",
    "secret_key",
    "credential",
    "credentials",
    "privatekey",
    "private_key",
];

/// Does this name hold a secret?
pub fn is_secret_name(name: &str) -> bool {
    let lower = name
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    if lower.is_empty() {
        return false;
    }
    let last = lower.rsplit(['_', '.']).next().unwrap_or(&lower);
    SECRET_NAMES.iter().any(|s| {
        lower == *s
            || last == *s
            || lower.ends_with(&s.replace('_', ""))
            || (s.len() > 4 && lower.contains(s))
    })
}

/// The text with every secret it spells out masked.
pub fn mask(text: &str) -> Cow<'_, str> {
    let masked = mask_assignments(&mask_userinfo(text));
    let masked = mask_mysql_password(&masked);
    if masked == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(masked)
    }
}

/// Does a command line carry a secret literally (something [`mask`]
/// would hide)?
pub fn secret_on_command_line(command: &str) -> bool {
    mask(command) != command
}

/// `scheme://user:pass@host` → `scheme://user:***@host`;
/// `scheme://token@host` → `scheme://***@host`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.split_once(':') {
                    Some((user, pass)) if !pass.is_empty() => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                    }
                    None if !userinfo.is_empty() => out.push_str(MASK),
                    None => {}
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// `NAME=value`, `--name=value`, `--name value` and `"name": "value"`
/// for secret-looking names: the value is masked.
fn mask_assignments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut after_secret_option = false;
    while i < chars.len() {
        let c = chars[i];
        if is_name_char(c) && (i == 0 || !is_name_char(chars[i - 1])) {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push_str(&name);
            if is_authorization(&name)
                && let Some(value_start) = assignment_value(&chars, i)
            {
                out.extend(&chars[i..value_start]);
                i = mask_credentials(&chars, value_start, &mut out);
                continue;
            }
            let secret = is_secret_name(&name);
            if secret && let Some(value_start) = assignment_value(&chars, i) {
                out.extend(&chars[i..value_start]);
                i = skip_value(&chars, value_start, &mut out);
                continue;
            }
            after_secret_option = secret && name.starts_with("--");
            continue;
        }
        if after_secret_option && c == ' ' {
            // `--password value`: the next word is the value.
            out.push(c);
            i = skip_value(&chars, i + 1, &mut out);
            after_secret_option = false;
            continue;
        }
        if !c.is_whitespace() {
            after_secret_option = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// HTTP's `Authorization:` (and `Proxy-Authorization:`) header.
fn is_authorization(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "authorization" || lower == "proxy-authorization"
}

/// `Bearer abc`, `token abc`, `Basic abc`: the scheme is kept, the
/// credentials masked (a lone value is masked whole).
fn mask_credentials(chars: &[char], start: usize, out: &mut String) -> usize {
    let scheme_end = chars[start..]
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .map_or(chars.len(), |p| start + p);
    if scheme_end > start && chars.get(scheme_end) == Some(&' ') {
        out.extend(&chars[start..=scheme_end]);
        return skip_value(chars, scheme_end + 1, out);
    }
    skip_value(chars, start, out)
}

/// Where the value assigned to the name ending at `at` starts: after
/// `=` (`NAME=value`), or after `: ` (`name: value`, JSON's
/// `"name": "value"`). A bare `name:` (a URL scheme, a label) is no
/// assignment.
fn assignment_value(chars: &[char], at: usize) -> Option<usize> {
    let mut i = at;
    if chars.get(i) == Some(&'"') && chars.get(i + 1) == Some(&':') {
        i += 1;
    }
    // TOML's `password = "…"`: spaces around the `=`.
    let mut eq = i;
    while chars.get(eq) == Some(&' ') {
        eq += 1;
    }
    if eq > i && chars.get(eq) == Some(&'=') {
        let mut j = eq + 1;
        while chars.get(j) == Some(&' ') {
            j += 1;
        }
        return Some(j);
    }
    match chars.get(i) {
        Some('=') => Some(i + 1),
        Some(':') => {
            let mut j = i + 1;
            while chars.get(j) == Some(&' ') {
                j += 1;
            }
            (j > i + 1).then_some(j)
        }
        _ => None,
    }
}

/// Write the mask for the value starting at `start` (quoted or up to
/// white space); returns where the value ends.
fn skip_value(chars: &[char], start: usize, out: &mut String) -> usize {
    let Some(&first) = chars.get(start) else {
        return start;
    };
    if first == '"' || first == '\'' {
        let end = chars[start + 1..]
            .iter()
            .position(|&c| c == first)
            .map_or(chars.len(), |p| start + 1 + p);
        out.push(first);
        out.push_str(MASK);
        if end < chars.len() {
            out.push(first);
            return end + 1;
        }
        return end;
    }
    let end = chars[start..]
        .iter()
        .position(|&c| {
            c.is_whitespace() || c == '"' || c == '\'' || c == ';' || c == '&' || c == ','
        })
        .map_or(chars.len(), |p| start + p);
    if end > start {
        out.push_str(MASK);
    }
    end
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// mysql and mariadb take `-pSECRET` (no space): masked where such a
/// client is named.
fn mask_mysql_password(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("mysql") && !lower.contains("mariadb") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        let trimmed = word.trim_end();
        match trimmed.strip_prefix("-p") {
            Some(value) if !value.is_empty() && !value.starts_with(MASK) => {
                out.push_str("-p");
                out.push_str(MASK);
                out.push_str(&word[trimmed.len()..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_their_usual_places_are_masked() {
        for (text, expected) in [
            (
                "pg_dump --dbname=postgresql://app:S3cr3t@db1:5432/erp",
                "pg_dump --dbname=postgresql://app:***@db1:5432/erp",
            ),
            (
                "curl https://TOKEN123@hooks.example/x",
                "curl https://***@hooks.example/x",
            ),
            (
                "PGPASSWORD=hunter2 pg_dump erp",
                "PGPASSWORD=*** pg_dump erp",
            ),
            (
                "MYSQL_PWD='a b c' mysqldump shop",
                "MYSQL_PWD='***' mysqldump shop",
            ),
            (
                "mysqldump -u backup -phunter2 shop",
                "mysqldump -u backup -p*** shop",
            ),
            (
                "tool --password=hunter2 --verbose",
                "tool --password=*** --verbose",
            ),
            (
                "tool --password hunter2 --verbose",
                "tool --password *** --verbose",
            ),
            ("tool --api-token=abc", "tool --api-token=***"),
            (r#"password = "correct horse""#, r#"password = "***""#),
            (
                "psql 'host=db user=app password=hunter2'",
                "psql 'host=db user=app password=***'",
            ),
            (
                "AWS_SECRET_ACCESS_KEY=abc aws s3 ls",
                "AWS_SECRET_ACCESS_KEY=*** aws s3 ls",
            ),
            (
                r#"{"token": "abc", "ok": 1}"#,
                r#"{"token": "***", "ok": 1}"#,
            ),
            (
                "curl -H 'Authorization: Bearer eyJabc.def' https://x",
                "curl -H 'Authorization: Bearer ***' https://x",
            ),
            (
                "curl -H 'X-Api-Key: k123' https://x",
                "curl -H 'X-Api-Key: ***' https://x",
            ),
        ] {
            assert_eq!(mask(text), expected, "{text}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "pg_dump -h db1 -p 5432 erp",
            "mkdir -p /srv/backup",
            "https://db1.example:5432/erp",
            "backup of file-share/default failed: no such file",
            "the token file is missing",
            "passed 3 checks; password authentication failed for user backup",
            "ssh -p22 host",
        ] {
            assert_eq!(mask(text), text, "{text}");
        }
        assert!(secret_on_command_line("PGPASSWORD=x pg_dump erp"));
        assert!(!secret_on_command_line("pg_dump -h db1 erp"));
    }
}
