//! Realistic Chinese plates: blue (ordinary small), green new-energy (six characters after
//! the city letter, starting with D or F), yellow (large vehicles), and emergency plates.

use rand::Rng;

const PROVINCES: [char; 12] = [
    '京', '沪', '粤', '浙', '苏', '川', '鲁', '豫', '鄂', '湘', '闽', '皖',
];
/// Plate letters exclude I and O.
const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Blue,
    Green,
    Yellow,
}

impl Kind {
    /// The colour as the gate API names it.
    pub fn colour(self) -> &'static str {
        match self {
            Kind::Blue => "blue",
            Kind::Green => "green",
            Kind::Yellow => "yellow",
        }
    }
}

fn pick(rng: &mut impl Rng, set: &[u8]) -> char {
    char::from(set[rng.gen_range(0..set.len())])
}

/// A random plate of `kind`: province, city letter, then the serial.
pub fn plate(rng: &mut impl Rng, kind: Kind) -> String {
    let mut plate = String::new();
    plate.push(PROVINCES[rng.gen_range(0..PROVINCES.len())]);
    plate.push(pick(rng, LETTERS));
    match kind {
        Kind::Green => {
            plate.push(if rng.gen_bool(0.5) { 'D' } else { 'F' });
            for _ in 0..5 {
                plate.push(pick(rng, DIGITS));
            }
        }
        Kind::Blue | Kind::Yellow => {
            // One or two letters among the digits, as issued.
            for i in 0..5 {
                let letter = i < 2 && rng.gen_bool(0.25);
                plate.push(pick(rng, if letter { LETTERS } else { DIGITS }));
            }
        }
    }
    plate
}

/// A mix as on the road: mostly blue, a fifth new-energy, a few yellow.
pub fn any(rng: &mut impl Rng) -> (String, Kind) {
    let kind = match rng.gen_range(0..100) {
        0..=74 => Kind::Blue,
        75..=94 => Kind::Green,
        _ => Kind::Yellow,
    };
    (plate(rng, kind), kind)
}

/// An emergency-rescue plate (`…应急`), exempt at every gate.
pub fn emergency(rng: &mut impl Rng) -> String {
    let mut plate = String::new();
    plate.push(PROVINCES[rng.gen_range(0..PROVINCES.len())]);
    plate.push(pick(rng, LETTERS));
    for _ in 0..5 {
        plate.push(pick(rng, DIGITS));
    }
    plate.push_str("应急");
    plate
}
