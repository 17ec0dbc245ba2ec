//! Query parameters as HIBP clients send them: names matched without regard to
//! case (the docs write `IncludeUnverified`, clients send `includeUnverified`),
//! values percent-decoded, unknown names ignored, and a bare trailing `?` fine.

use crate::error::AppError;

/// The decoded parameters of one request, names lower-cased.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        let Some(query) = query else { return Params::default() };
        Params(
            form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.to_ascii_lowercase(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name` (lower-case), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }

    /// A boolean parameter: `true`/`false` in any case (and `1`/`0`); absent or
    /// empty means `default`; anything else is bad input.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, AppError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(_) => Err(AppError::BadRequest("A boolean parameter was neither true nor false.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ignore_case_and_values_decode() {
        let p = Params::parse(Some("IncludeUnverified=FALSE&truncateresponse=true&Domain=ex%61mple.com&x"));
        assert!(!p.flag("includeunverified", true).unwrap());
        assert!(p.flag("truncateresponse", false).unwrap());
        assert_eq!(p.get("domain"), Some("example.com"));
        assert_eq!(p.get("x"), Some(""));
        assert!(p.flag("x", true).unwrap());
        assert!(p.flag("absent", true).unwrap());
        assert!(Params::parse(Some("a=maybe")).flag("a", true).is_err());
        assert_eq!(Params::parse(Some("")).get("a"), None);
        assert_eq!(Params::parse(None).get("a"), None);
    }
}
