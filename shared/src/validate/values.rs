//! Scalar values: email addresses, phone numbers, web URLs, slugs, country codes, dates.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::FieldErrors;
use super::{Field, expect_str};

/// An email address: valid syntax, at most 254 bytes, sent without white space around it,
/// the domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        use email_address::{EmailAddress, Options};
        // SMTP's limit is in bytes (RFC 5321 §4.5.3.1), and an address stands inside a sort
        // key: 254 bytes of UTF-8 as sent, spaces around it included, as the document's
        // maxLength counts them for an ASCII address.
        if raw.len() > 254 {
            return Err(format!("must be at most 254 bytes, not {}", raw.len()));
        }
        // The document's `format: email` refuses white space around an address, so the API
        // does too, rather than store a trimmed value the document calls invalid.
        if raw.trim() != raw {
            return Err("must not have white space around it".into());
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed = EmailAddress::parse_with_options(raw, options)
            .map_err(|e| format!("not a valid address ({e})"))?;
        Ok(Self(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_lowercase()
        )))
    }
}

impl Field for Email {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// A phone number in E.164 form (`+49658245684`), checked against libphonenumber's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        // Counted as sent, as the document's maxLength counts it.
        if raw.chars().count() > 64 {
            return Err("is not a phone number: at most 64 characters".into());
        }
        let raw = raw.trim();
        let raw = Self::spelling(raw)?;
        let util = &*rlibphonenumber::PHONE_NUMBER_UTIL;
        let number = util.parse(raw, None).map_err(|_| {
            "not a valid phone number: use the international form with a + and the country code, such as +14155552671".to_owned()
        })?;
        if !util.is_valid_number(&number) {
            return Err("not a valid phone number for its country code".into());
        }
        Ok(Self(
            util.format(&number, rlibphonenumber::PhoneNumberFormat::E164)
                .into_owned(),
        ))
    }
}

impl Phone {
    /// The number of a human spelling: an optional `tel:`, then one leading `+` and digits,
    /// grouped by spaces, dots, dashes and parentheses. Anything else (a second `+`, `*`,
    /// `#`, letters such as an extension, which E.164 would drop) is refused rather than
    /// guessed at; libphonenumber alone would skip such characters.
    fn spelling(raw: &str) -> Result<&str, String> {
        let number = match raw.get(..4) {
            Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => raw[4..].trim_start(),
            _ => raw,
        };
        let digits = number.strip_prefix('+').unwrap_or(number);
        let mut depth = 0u8;
        for c in digits.chars() {
            match c {
                '0'..='9' | ' ' | '.' | '-' => {}
                '(' if depth == 0 => depth = 1,
                ')' if depth == 1 => depth = 0,
                other => {
                    return Err(format!(
                        "not a phone number: {other:?} is not part of one (use digits with one \
                         leading +, grouped by spaces, dots, dashes or parentheses)"
                    ));
                }
            }
        }
        if depth != 0 {
            return Err("not a phone number: a parenthesis is not closed".into());
        }
        Ok(number)
    }
}

impl Field for Phone {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// An absolute `http` or `https` URL of at most 2,048 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebUrl(String);

/// Why `raw` is not made of what a URI may hold (RFC 3986 §2: the unreserved and reserved
/// characters, and `%` followed by two hex digits), or `None` when it is. The URL parser is
/// more forgiving (it drops tabs, percent-encodes spaces and non-ASCII, reads `\\` as `/`),
/// so a URL it takes may still be one the document's `format: uri` refuses; this refuses it.
fn not_uri_text(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, c) in raw.char_indices() {
        let allowed = c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=".contains(c);
        if c == '%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Some("has a % not followed by two hex digits".into());
            }
        } else if !allowed {
            return Some(format!(
                "must be a URI as sent: {c:?} is not allowed (percent-encode it)"
            ));
        }
    }
    None
}

impl Field for WebUrl {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        if raw.chars().count() > 2048 {
            errors.push(path, "must be at most 2048 characters");
            return None;
        }
        if let Some(why) = not_uri_text(raw) {
            errors.push(path, why);
            return None;
        }
        match url::Url::parse(raw) {
            // The caller's own spelling, validated: re-serialising the parsed URL
            // would change what they sent (`https://acme.com` → `https://acme.com/`).
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(Self(raw.to_owned()))
            }
            Ok(_) => {
                errors.push(path, "must be an http or https URL");
                None
            }
            Err(e) => {
                errors.push(path, format!("not a valid absolute URL ({e})"));
                None
            }
        }
    }
}

/// A URL-safe handle: `[a-z0-9-]`, 1 to 100 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub const MAX: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn new(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > Self::MAX {
            return Err(format!("must be 1 to {} characters", Self::MAX));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may contain only lowercase letters a-z, digits and hyphens".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug made from a display name, if the name has any letter or digit to keep.
    pub fn from_name(name: &str) -> Option<Self> {
        let mut base = slug::slugify(name);
        if base.len() > Self::MAX {
            base.truncate(Self::MAX);
            base = base.trim_end_matches('-').to_owned();
        }
        Self::new(&base).ok()
    }

    /// The `n`th alternative for a taken slug: `base-n`, shortened to stay within the limit.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = (Self::MAX - suffix.len()).min(self.0.len());
        let base = self.0[..keep].trim_end_matches('-');
        Self(format!("{base}{suffix}"))
    }
}

impl Field for Slug {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// An ISO 3166-1 numeric country code (`"840"`), known to the ISO list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CountryCode(isocountry::CountryCode);

impl CountryCode {
    pub fn new(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{raw:?} is not an ISO 3166-1 numeric country code (three digits, such as \"840\")"
            )
        };
        if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let id = u32::from_str(raw).map_err(|_| bad())?;
        isocountry::CountryCode::for_id(id)
            .map(Self)
            .map_err(|_| bad())
    }

    /// The country object of the contract, with its UN M49 region.
    pub fn country(&self) -> Country {
        let numeric_code = format!("{:03}", self.0.numeric_id());
        let region = codes_un_m49::RegionClassificationCode::from_str(&numeric_code)
            .ok()
            .and_then(|c| c.parent_code());
        Country {
            alpha2_code: self.0.alpha2(),
            alpha3_code: self.0.alpha3(),
            name: self.0.name(),
            region_numeric_code: region.map(|r| format!("{:03}", r.code())),
            region_name: region.map(|r| r.name()),
            numeric_code,
        }
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> Self {
        format!("{:03}", c.0.numeric_id())
    }
}

impl TryFrom<String> for CountryCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl Field for CountryCode {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        Self::new(raw).map_err(|m| errors.push(path, m)).ok()
    }
}

/// The expansion of a country code, as responses show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Country {
    pub numeric_code: String,
    pub alpha2_code: &'static str,
    pub alpha3_code: &'static str,
    pub name: &'static str,
    pub region_numeric_code: Option<String>,
    pub region_name: Option<&'static str>,
}

/// A calendar date with day or month precision: `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartialDate(String);

impl Field for PartialDate {
    fn parse(value: &Value, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let raw = expect_str(value, path, errors)?;
        let full = match raw.len() {
            7 => format!("{raw}-01"),
            10 => raw.to_owned(),
            _ => String::new(),
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(&full, format).is_ok() {
            Some(Self(raw.to_owned()))
        } else {
            errors.push(path, "must be a date as YYYY-MM or YYYY-MM-DD");
            None
        }
    }
}

impl PartialDate {
    /// Whether `end` can follow `self`, comparing at the coarser of the two precisions.
    pub(super) fn allows_end(&self, end: &Self) -> bool {
        let n = self.0.len().min(end.0.len());
        end.0[..n] >= self.0[..n]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Parses `value` as a `T` at `path`: the value, or the messages it got.
    fn parse<T: Field>(value: Value) -> Result<T, Vec<String>> {
        let mut errors = FieldErrors::default();
        match T::parse(&value, "f", &mut errors) {
            Some(v) => Ok(v),
            None => Err(errors.messages()),
        }
    }

    #[test]
    fn an_email_keeps_its_local_part_and_lower_cases_its_domain() {
        let e: Email = parse(json!("Mary.Smith@Example.COM")).unwrap();
        assert_eq!(e.as_str(), "Mary.Smith@example.com");
        for bad in [
            " mary@example.com",
            "mary@example.com\n",
            "mary",
            "mary@localhost",
            "Mary <mary@example.com>",
            "a@[127.0.0.1]",
        ] {
            assert!(parse::<Email>(json!(bad)).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert!(parse::<Email>(json!(long)).is_err());
        assert!(parse::<Email>(json!(42)).unwrap_err()[0].contains("a number"));
    }

    #[test]
    fn a_phone_number_is_stored_in_e164() {
        let p: Phone = parse(json!("+1 (415) 555-2671")).unwrap();
        assert_eq!(p.as_str(), "+14155552671");
        let p: Phone = parse(json!("+49 6582 45684")).unwrap();
        assert_eq!(p.as_str(), "+49658245684");
        for bad in ["415 555 2671", "+1 555", "phone", &"+1".repeat(40)] {
            assert!(parse::<Phone>(json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_phone_number_takes_the_usual_spellings_and_refuses_stray_symbols() {
        for good in [
            "+14155552671",
            "+1 415 555 2671",
            "+1.415.555.2671",
            "+1-415-555-2671",
            "+1 (415) 555-2671",
            "tel:+1-415-555-2671",
            "TEL:+14155552671",
        ] {
            let p: Phone = parse(json!(good)).unwrap_or_else(|e| panic!("{good}: {e:?}"));
            assert_eq!(p.as_str(), "+14155552671", "{good}");
        }
        for bad in [
            "+1415249327*3",
            "++14152493273",
            "+1 415 555 2671 ext. 12",
            "+1 415 555 2671#",
            "+1 (415 555 2671",
            "+1 415) 555 2671",
            "+1 ((415)) 555 2671",
            "tel:+1-415-555-2671;ext=1",
            "+1/415/555/2671",
        ] {
            assert!(parse::<Phone>(json!(bad)).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Any character that is not part of a phone number's spelling, anywhere in a valid
        /// number, makes it refused.
        #[test]
        fn a_stray_symbol_anywhere_is_refused(
            at in 0usize..=15,
            stray in any::<char>().prop_filter("not a spelling character", |c| {
                !(c.is_ascii_digit() || c.is_whitespace() || "+.-()".contains(*c))
            }),
        ) {
            let number = "+1 415 555 2671";
            let at = at.min(number.len());
            let spelled = format!("{}{stray}{}", &number[..at], &number[at..]);
            prop_assert!(Phone::new(&spelled).is_err(), "{spelled:?}");
        }

        /// Any spelling made of the accepted characters, for any country code, is refused
        /// or accepted without a panic; what is accepted is E.164 (`+`, then at most 15
        /// digits, the first not 0) and is accepted again as itself.
        #[test]
        fn any_spelling_is_refused_or_stored_in_e164_that_reads_back_the_same(
            spelled in "(tel:)?\\+?[1-9][0-9 .()-]{0,20}",
        ) {
            if let Ok(phone) = Phone::new(&spelled) {
                let digits = &phone.as_str()[1..];
                prop_assert!(phone.as_str().starts_with('+'), "{phone:?}");
                prop_assert!(
                    (1..=15).contains(&digits.len())
                        && digits.bytes().all(|b| b.is_ascii_digit())
                        && !digits.starts_with('0'),
                    "{spelled:?} → {phone:?}"
                );
                prop_assert_eq!(Phone::new(phone.as_str()), Ok(phone.clone()));
            }
        }
    }

    #[test]
    fn a_web_url_is_absolute_http_or_https_with_a_host_and_kept_as_sent() {
        let url: WebUrl = parse(json!("https://Acme.com?q=1")).unwrap();
        assert_eq!(
            serde_json::to_value(&url).unwrap(),
            json!("https://Acme.com?q=1")
        );
        assert!(parse::<WebUrl>(json!("https://acme.com/about")).is_ok());
        assert!(parse::<WebUrl>(json!("http://acme.com")).is_ok());
        assert!(parse::<WebUrl>(json!("https://acme.com/caf%C3%A9?q=a+b&r=[1]#top")).is_ok());
        for bad in [
            "ftp://acme.com",
            "acme.com",
            "mailto:a@b.co",
            "https://",
            // What the URL parser would drop or rewrite: not a URI as sent.
            " https://acme.com",
            "https://acme.com/a\tb",
            "https://acme.com\\about",
            "https://acme.com/\u{85}",
            "https://acme.com/\u{e9}",
            "https://acme.com/a|b",
            "https://acme.com/%zz",
            "https://acme.com/%4",
        ] {
            assert!(parse::<WebUrl>(json!(bad)).is_err(), "{bad}");
        }
        let long = format!("https://acme.com/{}", "a".repeat(2048));
        assert!(parse::<WebUrl>(json!(long)).is_err());
    }

    #[test]
    fn a_slug_is_lowercase_letters_digits_and_hyphens() {
        assert!(Slug::new("mary-smith-2").is_ok());
        for bad in ["", "Mary", "mary smith", "mary_smith", &"a".repeat(101)] {
            assert!(Slug::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Slug::from_name("Mary Smith").unwrap().as_str(),
            "mary-smith"
        );
        assert_eq!(Slug::from_name("Zoë Ñúñez").unwrap().as_str(), "zoe-nunez");
        assert_eq!(Slug::from_name("!!!"), None);
    }

    proptest! {
        /// Whatever the base and the number, a suffixed slug is a valid slug that ends in
        /// `-n`: a taken slug always has a next candidate.
        #[test]
        fn a_suffixed_slug_is_always_a_valid_slug(base in "[a-z0-9-]{1,100}", n in any::<u32>()) {
            let Ok(base) = Slug::new(&base) else { return Ok(()); };
            let next = base.with_suffix(n);
            prop_assert!(Slug::new(next.as_str()).is_ok(), "{}", next.as_str());
            let suffix = format!("-{n}");
            prop_assert!(next.as_str().ends_with(&suffix));
        }

        /// A slug made from any name is valid, or there is none.
        #[test]
        fn a_slug_from_any_name_is_valid(name in "\\PC{0,300}") {
            if let Some(slug) = Slug::from_name(&name) {
                prop_assert!(Slug::new(slug.as_str()).is_ok());
            }
        }
    }

    #[test]
    fn a_country_code_is_three_digits_known_to_iso_and_expands_with_its_region() {
        let c: CountryCode = parse(json!("840")).unwrap();
        let country = c.country();
        assert_eq!(country.alpha2_code, "US");
        assert_eq!(country.region_numeric_code.as_deref(), Some("021"));
        assert_eq!(String::from(c), "840");
        assert_eq!(
            CountryCode::new("040").unwrap().country().alpha3_code,
            "AUT"
        );
        for bad in ["84", "8400", "999", "US", " 840"] {
            assert!(CountryCode::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_partial_date_has_month_or_day_precision() {
        assert!(parse::<PartialDate>(json!("2024-02")).is_ok());
        assert!(parse::<PartialDate>(json!("2024-02-29")).is_ok());
        for bad in ["2023-02-29", "2024", "2024-13", "2024-1-01", "02/2024"] {
            assert!(parse::<PartialDate>(json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_end_date_is_compared_at_the_coarser_precision() {
        let d = |s: &str| parse::<PartialDate>(json!(s)).unwrap();
        assert!(d("2020-05").allows_end(&d("2020-05-01")));
        assert!(d("2020-05-31").allows_end(&d("2020-05")));
        assert!(!d("2020-05").allows_end(&d("2020-04-30")));
        assert!(!d("2020-05-02").allows_end(&d("2020-05-01")));
    }
}
