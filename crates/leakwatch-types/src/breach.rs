//! Breach names and HIBP's data-class vocabulary.

/// A breach name is HIBP-style: ASCII letters and digits only, 1 to 64 of them.
/// Returns a message fit for a user when it is not.
pub fn validate_breach_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("breach name {name:?} must be 1 to 64 characters"));
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!("breach name {name:?} may hold only ASCII letters and digits (found {c:?})"));
    }
    Ok(())
}

/// The data classes leakwatch can infer from a record, spelled as HIBP spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DataClass {
    EmailAddresses,
    Usernames,
    PhoneNumbers,
    Passwords,
    Names,
    IpAddresses,
    DatesOfBirth,
    PhysicalAddresses,
    /// Stealer logs: the websites whose logins were captured.
    Urls,
    /// A hint column with a value (forum and site databases).
    PasswordHints,
}

impl DataClass {
    pub const fn hibp_name(self) -> &'static str {
        match self {
            DataClass::EmailAddresses => "Email addresses",
            DataClass::Usernames => "Usernames",
            DataClass::PhoneNumbers => "Phone numbers",
            DataClass::Passwords => "Passwords",
            DataClass::Names => "Names",
            DataClass::IpAddresses => "IP addresses",
            DataClass::DatesOfBirth => "Dates of birth",
            DataClass::PhysicalAddresses => "Physical addresses",
            DataClass::Urls => "URLs",
            DataClass::PasswordHints => "Password hints",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breach_names_are_alphanumeric() {
        assert!(validate_breach_name("LeakBase2026").is_ok());
        assert!(validate_breach_name("").is_err());
        assert!(validate_breach_name("Leak Base").is_err());
        assert!(validate_breach_name("leak-base").is_err());
        assert!(validate_breach_name(&"a".repeat(65)).is_err());
    }
}
