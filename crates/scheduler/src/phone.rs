//! Phone numbers in E.164 (`+8613812345678`): what `import` stores and what SMS go to.
//!
//! A documented subset of numbering plans instead of a full library (the `phonenumber` crate
//! carries every country's metadata and regular expressions; tiercare needs the form, not
//! the carrier): a number written internationally (`+…` or `00…`) is kept as its digits when
//! it has 8 to 15 of them; a national number (`138 1234 5678`, `(020) 7946 0958`) takes the
//! calling code of its region, drops the region's trunk prefix and must have one of the
//! region's lengths. The regions known are in [`REGIONS`]; a national number of another
//! region cannot be read and is refused, with the hint to write it with `+`.
//!
//! Spaces, dots, dashes, slashes and brackets are separators; anything else (letters, an
//! extension) makes the number invalid.

use serde::Deserialize;

/// `[import]` in `tiercare.toml`: what imports assume when a file does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// The region (ISO 3166 alpha-2, `CN`, `US`, `GB`…) of phone numbers written without a
    /// country code, for customers whose own `region` is not one of [`REGIONS`].
    #[serde(default)]
    pub default_region: Option<String>,
}

/// A region's numbering: ISO code, calling code, trunk prefix (dropped from national
/// numbers), and the lengths of its national significant numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166 alpha-2.
    pub code: &'static str,
    /// The country calling code.
    pub calling: &'static str,
    /// The trunk prefix, if the region has one.
    pub trunk: Option<&'static str>,
    /// Shortest and longest national significant number.
    pub lengths: (usize, usize),
}

/// The regions whose national numbers tiercare reads.
pub const REGIONS: &[Region] = &[
    Region {
        code: "CN",
        calling: "86",
        trunk: Some("0"),
        lengths: (9, 11),
    },
    Region {
        code: "HK",
        calling: "852",
        trunk: None,
        lengths: (8, 8),
    },
    Region {
        code: "MO",
        calling: "853",
        trunk: None,
        lengths: (8, 8),
    },
    Region {
        code: "TW",
        calling: "886",
        trunk: Some("0"),
        lengths: (8, 9),
    },
    Region {
        code: "SG",
        calling: "65",
        trunk: None,
        lengths: (8, 8),
    },
    Region {
        code: "JP",
        calling: "81",
        trunk: Some("0"),
        lengths: (9, 10),
    },
    Region {
        code: "KR",
        calling: "82",
        trunk: Some("0"),
        lengths: (8, 10),
    },
    Region {
        code: "IN",
        calling: "91",
        trunk: Some("0"),
        lengths: (10, 10),
    },
    Region {
        code: "AU",
        calling: "61",
        trunk: Some("0"),
        lengths: (9, 9),
    },
    Region {
        code: "US",
        calling: "1",
        trunk: Some("1"),
        lengths: (10, 10),
    },
    Region {
        code: "CA",
        calling: "1",
        trunk: Some("1"),
        lengths: (10, 10),
    },
    Region {
        code: "GB",
        calling: "44",
        trunk: Some("0"),
        lengths: (9, 10),
    },
    Region {
        code: "IE",
        calling: "353",
        trunk: Some("0"),
        lengths: (7, 9),
    },
    Region {
        code: "DE",
        calling: "49",
        trunk: Some("0"),
        lengths: (6, 13),
    },
    Region {
        code: "FR",
        calling: "33",
        trunk: Some("0"),
        lengths: (9, 9),
    },
    Region {
        code: "NL",
        calling: "31",
        trunk: Some("0"),
        lengths: (9, 9),
    },
    Region {
        code: "ES",
        calling: "34",
        trunk: None,
        lengths: (9, 9),
    },
    Region {
        code: "IT",
        calling: "39",
        trunk: None,
        lengths: (6, 11),
    },
];

/// The region with this ISO code (any case), if tiercare knows it.
#[must_use]
pub fn region(code: &str) -> Option<&'static Region> {
    let code = code.trim();
    REGIONS.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// Why a phone number cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Characters other than digits, `+` and separators.
    #[error("`{0}` is not a phone number: only digits, a leading + and separators are allowed")]
    Characters(char),
    /// Too few or too many digits.
    #[error("a phone number has 8 to 15 digits with its country code; this one has {0}")]
    Length(usize),
    /// A national number without a region to read it in.
    #[error(
        "the number has no country code and the region is unknown: write it as +<country code><number>, or set `[import] default_region` in tiercare.toml"
    )]
    NoRegion,
    /// A national number of the wrong length for its region.
    #[error(
        "not a {region} number: {region} numbers have {min} to {max} digits after the trunk prefix"
    )]
    National {
        /// The region.
        region: &'static str,
        /// Shortest.
        min: usize,
        /// Longest.
        max: usize,
    },
}

/// The E.164 form of `raw`, read in `region` when it has no country code.
///
/// # Errors
/// Why it is not a phone number.
pub fn to_e164(raw: &str, region: Option<&Region>) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    let (international, rest) = if let Some(rest) = trimmed.strip_prefix('+') {
        (true, rest)
    } else {
        (false, trimmed)
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '/' | '(' | ')' | '\u{a0}' => {}
            other => return Err(PhoneError::Characters(other)),
        }
    }
    let international_digits = if international {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    if let Some(number) = international_digits {
        if !(8..=15).contains(&number.len()) || number.starts_with('0') {
            return Err(PhoneError::Length(number.len()));
        }
        return Ok(format!("+{number}"));
    }
    let region = region.ok_or(PhoneError::NoRegion)?;
    let national = match region.trunk {
        Some(trunk) if digits.len() > region.lengths.1 => {
            digits.strip_prefix(trunk).unwrap_or(&digits)
        }
        Some(trunk) if region.trunk == Some("0") => digits.strip_prefix(trunk).unwrap_or(&digits),
        _ => digits.as_str(),
    };
    let (min, max) = region.lengths;
    if !(min..=max).contains(&national.len()) {
        return Err(PhoneError::National {
            region: region.code,
            min,
            max,
        });
    }
    let e164 = format!("+{}{national}", region.calling);
    if e164.len() - 1 > 15 {
        return Err(PhoneError::Length(e164.len() - 1));
    }
    Ok(e164)
}

/// Whether `text` is in E.164 form: `+`, then 8 to 15 digits, the first not 0.
#[must_use]
pub fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str, code: &str) -> Result<String, PhoneError> {
        to_e164(raw, region(code))
    }

    #[test]
    fn national_numbers_take_their_regions_code() {
        assert_eq!(read("138 1234 5678", "CN").unwrap(), "+8613812345678");
        assert_eq!(read("(010) 6552-9988", "cn").unwrap(), "+861065529988");
        assert_eq!(read("020 7946 0958", "GB").unwrap(), "+442079460958");
        assert_eq!(read("(415) 555-2671", "US").unwrap(), "+14155552671");
        assert_eq!(read("1 415 555 2671", "US").unwrap(), "+14155552671");
        assert_eq!(read("9123 4567", "HK").unwrap(), "+85291234567");
        assert_eq!(read("06 12345678", "NL").unwrap(), "+31612345678");
    }

    #[test]
    fn international_numbers_are_kept_whatever_the_region() {
        assert_eq!(read("+86 138-1234-5678", "US").unwrap(), "+8613812345678");
        assert_eq!(read("0044 20 7946 0958", "CN").unwrap(), "+442079460958");
        assert_eq!(to_e164("+1 (415) 555-2671", None).unwrap(), "+14155552671");
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(read("138-CALL-ME", "CN"), Err(PhoneError::Characters('C')));
        assert_eq!(read("+12", "CN"), Err(PhoneError::Length(2)));
        assert_eq!(to_e164("138 1234 5678", None), Err(PhoneError::NoRegion));
        assert!(matches!(
            read("1234", "CN"),
            Err(PhoneError::National { region: "CN", .. })
        ));
        assert!(is_e164("+8613812345678"));
        assert!(!is_e164("13812345678"));
        assert!(!is_e164("+0123456789"));
    }
}
