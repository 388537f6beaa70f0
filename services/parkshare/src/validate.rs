//! Field parsers shared by the JSON API and the CSV imports, so both refuse the same things
//! with the same words.

use crate::error::ErrorCode;
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use rust_decimal::Decimal;

use crate::error::ApiError;

/// Longest unit ("3栋2单元1502").
pub const UNIT_CHARS_MAX: usize = 100;

/// Largest exclusive floor area of one owner: a whole tower is not one owner's flat.
const FLOOR_AREA_M2_MAX: Decimal = Decimal::from_parts(100_000, 0, 0, false, 0);

/// A field that failed validation: which field, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError::invalid(
            ErrorCode::InvalidField,
            format!("{}: {}", e.field, e.message),
        )
    }
}

fn err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Trimmed text of 1 to `max_chars` characters, none of them a control character
/// ([`crate::input::check_text`]); whitespace alone is no value.
pub fn text(field: &'static str, value: &str, max_chars: usize) -> Result<String, FieldError> {
    let value = value.trim();
    // Blank is blank however it is spelt: spaces of any kind, or only invisible characters.
    if value
        .chars()
        .all(|c| c.is_whitespace() || crate::input::is_forbidden(c))
    {
        return Err(err(
            field,
            format!("must be 1 to {max_chars} characters, not blank"),
        ));
    }
    crate::input::check_text(value, max_chars).map_err(|e| err(field, e.to_string()))?;
    Ok(value.to_owned())
}

/// A flat's unit, in one spelling: the same unit typed with full-width digits or dashes
/// (`３－１２０１`, common from Chinese input methods), other dashes, or extra spaces is the same
/// unit (`3-1201`); so is one whose Latin letters are in another case (`a-1` is `A-1`: block
/// and entrance letters are capitals on the compound's signs). One household is one unit: it
/// cannot apply twice to a lottery, nor be registered twice, by writing its unit another way.
pub fn unit(field: &'static str, value: &str) -> Result<String, FieldError> {
    use unicode_normalization::UnicodeNormalization;
    let value = text(field, value, UNIT_CHARS_MAX)?;
    let folded: String = value
        .nfkc()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    Ok(folded.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Longest label of a credential or share link (where it is used: "东门公告栏", "owner app").
pub const LABEL_CHARS_MAX: usize = 100;

/// A credential's optional label: checked like any [`text`] when given, else `default`.
pub fn label_or(value: Option<String>, default: &str) -> Result<String, FieldError> {
    value.map_or_else(
        || Ok(default.to_owned()),
        |l| text("label", &l, LABEL_CHARS_MAX),
    )
}

/// Optional text: absent, or [`text`].
pub fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    value.map(|v| text(field, v, max_chars)).transpose()
}

pub fn plate(field: &'static str, value: &str) -> Result<Plate, FieldError> {
    Plate::parse(value).map_err(|e| err(field, e.to_string()))
}

pub fn vehicle_class(field: &'static str, value: &str) -> Result<VehicleClass, FieldError> {
    VehicleClass::parse(value.trim())
        .ok_or_else(|| err(field, "must be small, large or new_energy"))
}

pub fn floor_area(field: &'static str, value: Decimal) -> Result<Decimal, FieldError> {
    if value <= Decimal::ZERO || value > FLOOR_AREA_M2_MAX || value.normalize().scale() > 2 {
        return Err(err(
            field,
            "must be a positive area in m² with at most two decimals",
        ));
    }
    Ok(value)
}

pub fn space_kind(field: &'static str, value: &str) -> Result<&'static str, FieldError> {
    match value.trim() {
        "owned" => Ok("owned"),
        "common" => Ok("common"),
        "developer_unsold" => Ok("developer_unsold"),
        _ => Err(err(field, "must be owned, common or developer_unsold")),
    }
}

pub fn time_zone(field: &'static str, value: &str) -> Result<chrono_tz::Tz, FieldError> {
    value
        .trim()
        .parse()
        .map_err(|_| err(field, "must be an IANA time zone such as Asia/Shanghai"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_has_one_spelling() {
        for spelt in ["3-1201", "３－１２０１", " 3‐1201 ", "3—1201", "3−1201"] {
            assert_eq!(
                unit("unit", spelt).map_err(|e| e.message),
                Ok("3-1201".into()),
                "{spelt}"
            );
        }
        assert_eq!(
            unit("unit", "３栋　２单元  1502").map_err(|e| e.message),
            Ok("3栋 2单元 1502".into())
        );
        for spelt in ["A-1", "a-1", "Ａ-1", "ａ－１"] {
            assert_eq!(
                unit("unit", spelt).map_err(|e| e.message),
                Ok("A-1".into()),
                "{spelt}"
            );
        }
        assert!(unit("unit", "　").is_err());
    }
}
