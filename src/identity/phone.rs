//! Phone numbers identify users. Indonesians write them `0812…`, `62812…` or `+62812…`; we store
//! E.164 (`+62812…`).

/// Normalizes an Indonesian mobile number to E.164, or explains what is wrong.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let national = if let Some(rest) = compact.strip_prefix("+62") {
        rest
    } else if let Some(rest) = compact.strip_prefix("62") {
        rest
    } else if let Some(rest) = compact.strip_prefix('0') {
        rest
    } else {
        return Err("must start with 08, 628 or +628");
    };
    if !national.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must contain only digits");
    }
    if !national.starts_with('8') {
        return Err("must be an Indonesian mobile number (08…)");
    }
    // Indonesian mobile numbers have 9 to 12 digits after the country code.
    if !(9..=12).contains(&national.len()) {
        return Err("must have 10 to 13 digits (08…)");
    }
    Ok(format!("+62{national}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn accepts_the_three_spellings() {
        for s in [
            "081234567890",
            "6281234567890",
            "+6281234567890",
            "0812-3456-7890",
            "+62 812 3456 7890",
        ] {
            assert_eq!(normalize(s).unwrap(), "+6281234567890", "{s}");
        }
    }

    #[test]
    fn rejects_the_rest() {
        for s in [
            "",
            "12345",
            "0212345678",
            "+1 555 123 4567",
            "08123",
            "0812345678901234",
            "08123abc567",
        ] {
            assert!(normalize(s).is_err(), "{s}");
        }
    }
}
