//! The browser origins that may call the API (`CORS_ALLOWED_ORIGINS`, the template's
//! `CorsAllowedOrigins`), as data: parsed once by the configuration loader, matched by the
//! edge's CORS answers (`edge::cors`; docs/browser.md).

/// The origins allowed to call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origins {
    /// CORS off: no answer carries an allow header, and no function answers a preflight.
    #[default]
    None,
    /// `*`: any origin (answers say `Access-Control-Allow-Origin: *`).
    Any,
    /// These origins exactly (`scheme://host[:port]`, as a browser sends `Origin`).
    List(Vec<String>),
}

impl Origins {
    /// `CORS_ALLOWED_ORIGINS`: empty (off), `*`, or origins separated by commas. An origin is
    /// `http(s)://host[:port]` with no path, query or trailing slash, as browsers send it
    /// (compared without regard to case, since scheme and host are case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim) {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let host_ok = rest.is_some_and(|host| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
            if !host_ok {
                return Err(format!(
                    "{origin:?} is not an origin: write http(s)://host[:port] (no path, no \
                     trailing slash), or * alone for any"
                ));
            }
            list.push(origin.to_ascii_lowercase());
        }
        Ok(Self::List(list))
    }

    /// Whether any origin is allowed at all.
    pub fn enabled(&self) -> bool {
        *self != Self::None
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow<'a>(&self, origin: &'a str) -> Option<&'a str> {
        match self {
            Self::None => None,
            Self::Any => Some("*"),
            Self::List(list) => list
                .iter()
                .find(|o| o.eq_ignore_ascii_case(origin))
                .map(|_| origin),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn origins_parse_as_off_any_or_a_list_and_refuse_paths_and_schemes() {
        assert_eq!(Origins::parse("").unwrap(), Origins::None);
        assert_eq!(Origins::parse("  ").unwrap(), Origins::None);
        assert_eq!(Origins::parse("*").unwrap(), Origins::Any);
        assert_eq!(
            Origins::parse("https://App.example.com, http://localhost:5173").unwrap(),
            Origins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into()
            ])
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://x",
            "https://a.example,*",
            "https://",
            "https://a.example,,https://b.example",
        ] {
            let err = Origins::parse(bad).unwrap_err();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_a_listed_origin_is_allowed_and_star_only_when_configured() {
        let list = Origins::parse("https://app.example.com").unwrap();
        assert_eq!(
            list.allow("https://app.example.com"),
            Some("https://app.example.com")
        );
        assert_eq!(
            list.allow("HTTPS://APP.EXAMPLE.COM"),
            Some("HTTPS://APP.EXAMPLE.COM")
        );
        assert_eq!(list.allow("https://evil.example"), None);
        assert_eq!(list.allow("https://app.example.com.evil.example"), None);
        assert_eq!(list.allow("null"), None);
        assert_eq!(Origins::None.allow("https://app.example.com"), None);
        assert_eq!(Origins::Any.allow("https://anyone.example"), Some("*"));
    }
}
