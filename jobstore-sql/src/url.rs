//! Store URLs: which dialect they name, and their printable form without the password.

use scheduler_core::{Error, Result};

use crate::dialect::Dialect;

/// A store URL as given (secret) and as printed (password replaced), with its dialect.
#[derive(Clone)]
pub(crate) struct StoreUrl {
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(dead_code, reason = "built without any dialect, no driver reads it")
    )]
    /// The URL handed to the driver, with the scheme normalized (`postgresql+psycopg2` is
    /// `postgres`). Never printed.
    pub(crate) secret: String,
    /// The URL with any password replaced by `***`: the only form in messages and `Debug`.
    pub(crate) redacted: String,
    /// The password as written and percent-decoded, to scrub from driver messages.
    secrets: Vec<String>,
    pub(crate) dialect: Dialect,
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl StoreUrl {
    /// Reads `url`: its scheme picks the dialect (`sqlite:`, `postgres://`/`postgresql://`,
    /// `mysql://`/`mariadb://`; a SQLAlchemy driver suffix such as `+psycopg2` is ignored).
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            Error::config(format!(
                "the job store URL {:?} has no scheme (sqlite:, postgres://, mysql://)",
                redact(url).0
            ))
        })?;
        let base = scheme
            .split_once('+')
            .map_or(scheme, |(base, _)| base)
            .to_ascii_lowercase();
        let (dialect, canonical) = match base.as_str() {
            "sqlite" => (Dialect::Sqlite, "sqlite"),
            "postgres" | "postgresql" => (Dialect::Postgres, "postgres"),
            "mysql" | "mariadb" => (Dialect::MySql, "mysql"),
            _ => {
                return Err(Error::config(format!(
                    "the job store URL {:?} names no SQL dialect this crate knows (sqlite:, \
                     postgres://, mysql://)",
                    redact(url).0
                )));
            }
        };
        let secret = format!("{canonical}:{rest}");
        let (redacted, secrets) = redact(&secret);
        Ok(StoreUrl {
            secret,
            redacted,
            secrets,
            dialect,
        })
    }

    /// `text` with the password of this URL replaced by `***` wherever it appears.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

/// `url` with the password of its user info and any `password=` query parameter replaced by
/// `***`, and the passwords found (as written and percent-decoded).
fn redact(url: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let mut out = String::with_capacity(url.len());
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (redact_query(url, &mut secrets), secrets);
    };
    out.push_str(&url[..start]);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                    remember(password, &mut secrets);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(tail, &mut secrets));
    (out, secrets)
}

/// `tail` (path and query) with the values of `password`-like query parameters replaced.
fn redact_query(tail: &str, secrets: &mut Vec<String>) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, value)) if key.to_ascii_lowercase().contains("password") => {
                remember(value, secrets);
                format!("{key}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

fn remember(password: &str, secrets: &mut Vec<String>) {
    if password.is_empty() {
        return;
    }
    secrets.push(password.to_owned());
    let decoded = percent_decode(password);
    if decoded != password {
        secrets.push(decoded);
    }
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_user_info_and_query() {
        let url = StoreUrl::parse("postgresql+psycopg2://app:s%3Acret@db:5432/jobs").unwrap();
        assert_eq!(url.dialect, Dialect::Postgres);
        assert_eq!(url.secret, "postgres://app:s%3Acret@db:5432/jobs");
        assert_eq!(url.redacted, "postgres://app:***@db:5432/jobs");
        assert_eq!(
            url.scrub("bad password s:cret for app"),
            "bad password *** for app"
        );
        assert_eq!(format!("{url:?}"), "postgres://app:***@db:5432/jobs");

        let url =
            StoreUrl::parse("mysql://root@h/test?password=hunter2&ssl-mode=required").unwrap();
        assert_eq!(
            url.redacted,
            "mysql://root@h/test?password=***&ssl-mode=required"
        );
        assert_eq!(url.dialect, Dialect::MySql);

        let url = StoreUrl::parse("sqlite://jobs.db?mode=rwc").unwrap();
        assert_eq!(url.redacted, "sqlite://jobs.db?mode=rwc");
        assert_eq!(
            StoreUrl::parse("sqlite::memory:").unwrap().dialect,
            Dialect::Sqlite
        );
    }

    #[test]
    fn unknown_schemes_are_config_errors_without_the_password() {
        let err = StoreUrl::parse("oracle://u:topsecret@h/db").unwrap_err();
        assert_eq!(err.kind(), scheduler_core::ErrorKind::Config);
        assert!(!err.to_string().contains("topsecret"), "{err}");
        assert!(StoreUrl::parse("no scheme here").is_err());
    }
}
