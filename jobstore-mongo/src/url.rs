//! Connection URLs without their secrets: what logs, errors and `Debug` show.

/// What stands in for a secret.
const MASK: &str = "***";

/// A connection URL, and the same URL with its password (and every query option whose name
/// says `password`) replaced by `***`. Only the redacted form is ever shown.
#[derive(Clone)]
pub(crate) struct SecretUrl {
    full: String,
    redacted: String,
    /// The secrets as they appear in the URL and percent-decoded, to scrub driver messages.
    secrets: Vec<String>,
}

impl SecretUrl {
    pub(crate) fn new(url: &str) -> Self {
        let (redacted, raw_secrets) = redact(url);
        let mut secrets = Vec::new();
        for raw in raw_secrets.into_iter().filter(|s| !s.is_empty()) {
            let decoded = percent_decode(&raw);
            if decoded != raw && !decoded.is_empty() {
                secrets.push(decoded);
            }
            secrets.push(raw);
        }
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        SecretUrl {
            full: url.to_owned(),
            redacted,
            secrets,
        }
    }

    /// The URL to connect with. Never log it.
    pub(crate) fn expose(&self) -> &str {
        &self.full
    }

    /// The URL with its secrets masked.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `text` with every secret of this URL masked (for driver messages, which may echo
    /// parts of the URL).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.full.as_str(), &self.redacted);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// The redacted URL and the secrets found in it.
fn redact(url: &str) -> (String, Vec<String>) {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL this store understands; it may be anything, a password included.
        return ("<not a mongodb:// URL>".to_owned(), vec![url.to_owned()]);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let mut secrets = Vec::new();
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    // The user information ends at the last `@` before the options: an `@` in a password
    // must be percent-encoded, but a careless one must not leak the rest of it.
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, hosts) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    secrets.push(password.to_owned());
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(hosts);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let mut first = true;
        for pair in query.split('&') {
            if !first {
                out.push('&');
            }
            first = false;
            match pair.split_once('=') {
                Some((key, value)) if key.to_ascii_lowercase().contains("password") => {
                    secrets.push(value.to_owned());
                    out.push_str(key);
                    out.push('=');
                    out.push_str(MASK);
                }
                _ => out.push_str(pair),
            }
        }
    }
    (out, secrets)
}

/// `%XX` sequences decoded; anything malformed left as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            // Two hex digits make at most 255.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_the_rest_kept() {
        let url = SecretUrl::new("mongodb://ada:s3cr%40t@h1:27017,h2/db?authSource=admin");
        assert_eq!(
            url.redacted(),
            "mongodb://ada:***@h1:27017,h2/db?authSource=admin"
        );
        assert_eq!(format!("{url:?}"), url.redacted());
        assert_eq!(url.scrub("auth failed for s3cr@t"), "auth failed for ***");
        assert_eq!(url.scrub("bad: s3cr%40t"), "bad: ***");
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for plain in [
            "mongodb://127.0.0.1:27017/?directConnection=true",
            "mongodb://ada@host/",
            "mongodb+srv://cluster.example.com/",
        ] {
            assert_eq!(SecretUrl::new(plain).redacted(), plain);
        }
    }

    #[test]
    fn password_options_and_careless_at_signs_are_masked() {
        let url = SecretUrl::new(
            "mongodb://u:p@ss@h/?tls=true&tlsCertificateKeyFilePassword=kf&appName=x",
        );
        assert_eq!(
            url.redacted(),
            "mongodb://u:***@h/?tls=true&tlsCertificateKeyFilePassword=***&appName=x"
        );
        assert!(!url.scrub("p@ss and kf").contains("p@ss"));
        assert_eq!(
            SecretUrl::new("hunter2").redacted(),
            "<not a mongodb:// URL>"
        );
    }
}
