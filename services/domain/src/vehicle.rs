//! Vehicle classes (they select prices) and exempt classes (they pass first and free, rule 1).

use serde::{Deserialize, Serialize};

use crate::plate::PlateColour;

/// The class a tariff prices by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    Small,
    Large,
    NewEnergy,
}

impl VehicleClass {
    /// The class a camera's plate colour implies when the event carries no class.
    pub fn from_colour(colour: PlateColour) -> VehicleClass {
        match colour {
            PlateColour::Blue | PlateColour::White | PlateColour::Black => VehicleClass::Small,
            PlateColour::Yellow | PlateColour::YellowGreen => VehicleClass::Large,
            PlateColour::Green => VehicleClass::NewEnergy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VehicleClass::Small => "small",
            VehicleClass::Large => "large",
            VehicleClass::NewEnergy => "new_energy",
        }
    }

    pub fn parse(text: &str) -> Option<VehicleClass> {
        match text {
            "small" => Some(VehicleClass::Small),
            "large" => Some(VehicleClass::Large),
            "new_energy" => Some(VehicleClass::NewEnergy),
            _ => None,
        }
    }
}

stored_words!(VehicleClass => "vehicle class", ExemptClass => "exempt class");

/// Vehicles that pass first and free (消防、救护及正在执行紧急公务的车辆).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExemptClass {
    Fire,
    Ambulance,
    Police,
    OfficialDuty,
}

impl ExemptClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ExemptClass::Fire => "fire",
            ExemptClass::Ambulance => "ambulance",
            ExemptClass::Police => "police",
            ExemptClass::OfficialDuty => "official_duty",
        }
    }

    pub fn parse(text: &str) -> Option<ExemptClass> {
        match text {
            "fire" => Some(ExemptClass::Fire),
            "ambulance" => Some(ExemptClass::Ambulance),
            "police" => Some(ExemptClass::Police),
            "official_duty" => Some(ExemptClass::OfficialDuty),
            _ => None,
        }
    }
}
