//! Chinese licence plates as cameras read them.
//!
//! `Plate::parse` normalises a camera read (spaces, separators, lower case) and accepts only
//! the shapes a mainland plate can have: a province abbreviation, an issuing-office letter,
//! five (fuel) or six (new-energy) letters and digits, and an optional suffix such as 挂, 学, 警
//! or 应急. Anything else (including the cameras' "无牌车" for an unread plate) is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Province (and army/armed-police) abbreviations that open a mainland plate.
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领";

/// One-character suffixes of special plates: trailer, learner, police, Hong Kong, Macau,
/// consulate, embassy, test, oversize.
const SUFFIXES: &str = "挂学警港澳领使试超";

/// Emergency-rescue plates (fire and rescue services since 2018) end with these two characters.
const EMERGENCY_SUFFIX: &str = "应急";

/// Characters that plate cameras confuse with each other. An exit read may be matched to an open
/// session whose plate differs in exactly one position by a pair from the same group.
const CONFUSABLE_GROUPS: [&str; 7] = ["0DQO", "8B", "1I", "2Z", "5S", "6G", "7T"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a licence plate: expected a province character, an office letter, 5 or 6 letters or digits and an optional suffix, e.g. 京A12345 or 粤B D12345")]
pub struct PlateError(pub String);

/// What a special plate says about its vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateMark {
    /// 警: a police vehicle.
    Police,
    /// 应急: a fire or emergency-rescue vehicle.
    EmergencyRescue,
}

impl Plate {
    pub fn parse(raw: &str) -> Result<Plate, PlateError> {
        let normalised: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '-' | '.' | '_'))
            .flat_map(char::to_uppercase)
            .collect();
        if is_plate_shape(&normalised) {
            Ok(Plate(normalised))
        } else {
            Err(PlateError(raw.chars().take(32).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn mark(&self) -> Option<PlateMark> {
        if self.0.ends_with(EMERGENCY_SUFFIX) {
            Some(PlateMark::EmergencyRescue)
        } else if self.0.ends_with('警') {
            Some(PlateMark::Police)
        } else {
            None
        }
    }

    /// True when `other` differs from `self` in exactly one position and the two characters
    /// there are ones cameras commonly confuse (0/D/Q, 8/B, 1/I, 2/Z, 5/S…).
    pub fn is_confusable_with(&self, other: &Plate) -> bool {
        let mut mine = self.0.chars();
        let mut theirs = other.0.chars();
        let mut differences = 0_u32;
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return differences == 1,
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => {
                    differences += 1;
                    if differences > 1 || !confusable(a, b) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

fn confusable(a: char, b: char) -> bool {
    CONFUSABLE_GROUPS
        .iter()
        .any(|group| group.contains(a) && group.contains(b))
}

fn is_plate_shape(plate: &str) -> bool {
    let mut chars = plate.chars();
    let (Some(province), Some(office)) = (chars.next(), chars.next()) else {
        return false;
    };
    if !PROVINCES.contains(province) || !office.is_ascii_uppercase() {
        return false;
    }
    let rest: String = chars.collect();
    let body = rest
        .strip_suffix(EMERGENCY_SUFFIX)
        .or_else(|| rest.strip_suffix(|c: char| SUFFIXES.contains(c)))
        .unwrap_or(&rest);
    let body_len = body.chars().count();
    let suffixed = body.len() != rest.len();
    let len_ok = match suffixed {
        // Special plates carry four or five characters before their suffix.
        true => (4..=5).contains(&body_len),
        false => (5..=6).contains(&body_len),
    };
    len_ok
        && body
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl TryFrom<String> for Plate {
    type Error = PlateError;
    fn try_from(value: String) -> Result<Plate, PlateError> {
        Plate::parse(&value)
    }
}

impl From<Plate> for String {
    fn from(plate: Plate) -> String {
        plate.0
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Plate colours as cameras report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateColour {
    /// Ordinary small vehicles.
    Blue,
    /// Large vehicles.
    Yellow,
    /// Small new-energy vehicles (gradient green).
    Green,
    /// Large new-energy vehicles.
    YellowGreen,
    /// Police and military.
    White,
    /// Foreign and Hong Kong/Macau vehicles.
    Black,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plate(text: &str) -> Plate {
        Plate::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn accepts_fuel_new_energy_and_special_plates() {
        for ok in [
            "京A12345",
            "粤BD12345",
            "云A·1234警",
            "沪A 1234挂",
            "川A12345应急",
            "豫a88888",
        ] {
            assert!(Plate::parse(ok).is_ok(), "{ok} should parse");
        }
        assert_eq!(plate("豫a 888-88").as_str(), "豫A88888");
    }

    #[test]
    fn refuses_what_is_not_a_plate() {
        for bad in [
            "",
            "无牌车",
            "A12345",
            "京112345",
            "京A1234",
            "京A1234567",
            "京A12$45",
            "京A12345X挂",
        ] {
            assert!(Plate::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn marks_police_and_emergency_plates() {
        assert_eq!(plate("云A1234警").mark(), Some(PlateMark::Police));
        assert_eq!(
            plate("云A12345应急").mark(),
            Some(PlateMark::EmergencyRescue)
        );
        assert_eq!(plate("云A12345").mark(), None);
    }

    #[test]
    fn confusable_reads_differ_by_one_commonly_confused_character() {
        assert!(!plate("京A0B123").is_confusable_with(&plate("京AD8123")));
        assert!(plate("京A0B123").is_confusable_with(&plate("京AD B123")));
        assert!(plate("京A8B123").is_confusable_with(&plate("京ABB123")));
        assert!(plate("京A12345").is_confusable_with(&plate("京AI2345")));
        assert!(!plate("京A12345").is_confusable_with(&plate("京A12346")));
        assert!(!plate("京A12345").is_confusable_with(&plate("京A12345")));
        assert!(!plate("京A12345").is_confusable_with(&plate("京A123456")));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(raw in "\\PC{0,12}") {
            if let Ok(p) = Plate::parse(&raw) {
                prop_assert_eq!(Plate::parse(p.as_str()), Ok(p.clone()));
            }
        }

        #[test]
        fn confusability_is_symmetric(a in "京A[0-9A-Z]{5}", b in "京A[0-9A-Z]{5}") {
            let (a, b) = (plate(&a), plate(&b));
            prop_assert_eq!(a.is_confusable_with(&b), b.is_confusable_with(&a));
        }
    }
}
