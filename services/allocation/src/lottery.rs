//! The verifiable lottery (摇号) for new or released spaces.
//!
//! A lottery is fair when the firm cannot choose its outcome and every owner can check that it
//! did not. Three moments make that so:
//!
//! 1. **Before applications open** the firm publishes a [`Commitment`]: a hash of a secret
//!    random [`Seed`] and the lottery's id. The seed cannot be changed afterwards without the
//!    hash giving it away, and the hash says nothing about it.
//! 2. **When applications close** the list of applicants is frozen and its
//!    [`applicants_digest`] published; the list itself is public throughout (units, never names).
//! 3. **At the draw** the seed is revealed and [`draw`] orders the applicants. Anyone holding
//!    the published lottery runs [`verify`] (or the Python in docs/lottery.md, written
//!    independently of this code) and gets the same order.
//!
//! # The algorithm, `parkshare-lottery-v1`
//!
//! Byte strings below are ASCII; `id` is the lottery's UUID in its 36-character lowercase form;
//! `seed` the 32 seed bytes; `‖` concatenation.
//!
//! - commitment = hex(SHA-256(`"parkshare-lottery-v1 commitment\n"` ‖ id ‖ `"\n"` ‖ places ‖
//!   `"\n"` ‖ seed)), `places` the number of spaces drawn for in decimal: the number of winners
//!   is fixed with the seed, before anyone applies.
//! - The random stream is the 8-byte big-endian words of the blocks
//!   SHA-256(`"parkshare-lottery-v1 draw\n"` ‖ id ‖ `"\n"` ‖ seed ‖ k), k = 0, 1, 2, … as an
//!   8-byte big-endian integer; each block gives four words, in order.
//! - A number below `n` is drawn by rejection, so every value is equally likely: take the next
//!   word `x`; if `x ≥ 2⁶⁴ − (2⁶⁴ mod n)`, discard it and take the next; else answer `x mod n`.
//! - Applicants are sorted by (tier, key), keys compared byte by byte in UTF-8; a lower tier
//!   draws before a higher one (e.g. tier 0 for households without a space). Each tier, in
//!   order, is shuffled by Fisher–Yates — for `i` from its length − 1 down to 1, swap places
//!   `i` and `j`, `j` a number below `i + 1` — the stream continuing from tier to tier.
//! - The order is the tiers' shuffles one after another: the first `places` applicants win,
//!   the rest wait in that order and move up when an offer lapses.
//!
//! The applicants digest is hex(SHA-256 of one line `tier TAB key LF` per applicant, sorted as
//! above).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The algorithm's name, published with every lottery.
pub const ALGORITHM: &str = "parkshare-lottery-v1";

/// The most applicants one lottery takes (a compound has a few thousand units at most).
pub const APPLICANTS_MAX: usize = 100_000;

/// The longest applicant key, in bytes (a unit such as "3-1-502").
pub const KEY_BYTES_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the seed must be 64 hexadecimal digits (32 bytes)")]
    SeedNotHex,
    #[error("unknown lottery algorithm {0:?}; this verifier knows {ALGORITHM:?}")]
    UnknownAlgorithm(String),
    #[error("applicant key {0:?} appears more than once")]
    DuplicateKey(String),
    #[error("an applicant key must be 1 to {KEY_BYTES_MAX} bytes without control characters; {0:?} is not")]
    BadKey(String),
    #[error("a lottery takes at most {APPLICANTS_MAX} applicants")]
    TooManyApplicants,
}

/// The secret the draw is made from: 32 bytes from the operating system's random source,
/// kept by the firm until the draw.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A seed shown before the draw would spoil the lottery: never print it by accident.
        f.write_str("Seed(…)")
    }
}

impl Seed {
    pub fn from_bytes(bytes: [u8; 32]) -> Seed {
        Seed(bytes)
    }

    /// A seed as published: 64 hexadecimal digits, either case.
    pub fn parse(hex_digits: &str) -> Result<Seed, Error> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits.trim(), &mut bytes).map_err(|_| Error::SeedNotHex)?;
        Ok(Seed(bytes))
    }

    /// 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// What the firm publishes before applications open, for a lottery of `places` spaces.
    pub fn commitment(&self, lottery: Uuid, places: u32) -> String {
        let mut hash = Sha256::new();
        hash.update(format!("{ALGORITHM} commitment\n{lottery}\n{places}\n"));
        hash.update(self.0);
        hex::encode(hash.finalize())
    }
}

/// One applicant: a stable public key (the owner's unit) and a priority tier, lower first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Applicant {
    pub tier: u8,
    pub key: String,
}

/// The applicants in the draw's order of sorting, checked.
fn sorted(applicants: &[Applicant]) -> Result<Vec<Applicant>, Error> {
    if applicants.len() > APPLICANTS_MAX {
        return Err(Error::TooManyApplicants);
    }
    let mut keys = BTreeSet::new();
    for applicant in applicants {
        let key = &applicant.key;
        if key.is_empty() || key.len() > KEY_BYTES_MAX || key.chars().any(char::is_control) {
            return Err(Error::BadKey(key.clone()));
        }
        if !keys.insert(key.as_str()) {
            return Err(Error::DuplicateKey(key.clone()));
        }
    }
    let mut sorted = applicants.to_vec();
    // (tier, key): derived Ord compares fields in order, and String compares UTF-8 bytes.
    sorted.sort();
    Ok(sorted)
}

/// The digest published when applications close: a later change to the list shows.
pub fn applicants_digest(applicants: &[Applicant]) -> Result<String, Error> {
    let mut hash = Sha256::new();
    for applicant in sorted(applicants)? {
        hash.update(format!("{}\t{}\n", applicant.tier, applicant.key));
    }
    Ok(hex::encode(hash.finalize()))
}

/// The random words of one lottery's draw.
struct Stream {
    prefix: Vec<u8>,
    block: u64,
    words: Vec<u64>,
}

impl Stream {
    fn new(lottery: Uuid, seed: &Seed) -> Stream {
        let mut prefix = format!("{ALGORITHM} draw\n{lottery}\n").into_bytes();
        prefix.extend_from_slice(&seed.0);
        Stream {
            prefix,
            block: 0,
            words: Vec::new(),
        }
    }

    fn word(&mut self) -> u64 {
        if self.words.is_empty() {
            let mut hash = Sha256::new();
            hash.update(&self.prefix);
            hash.update(self.block.to_be_bytes());
            self.block += 1;
            let digest = hash.finalize();
            // Kept reversed so that `pop` hands them out first to last.
            self.words = digest
                .chunks_exact(8)
                .rev()
                .map(|chunk| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    u64::from_be_bytes(word)
                })
                .collect();
        }
        self.words.pop().unwrap_or_default()
    }

    /// A number below `n` (n ≥ 1), every value equally likely.
    fn below(&mut self, n: u64) -> u64 {
        // 2⁶⁴ mod n, computed without 2⁶⁴: (2⁶⁴ − n) mod n.
        let excess = n.wrapping_neg() % n;
        loop {
            let x = self.word();
            // x < 2⁶⁴ − excess, written so that nothing overflows: x ≤ u64::MAX − excess.
            if x <= u64::MAX - excess {
                return x % n;
            }
        }
    }
}

/// The draw: every applicant's key, winners first, the waiting list after them.
pub fn draw(lottery: Uuid, seed: &Seed, applicants: &[Applicant]) -> Result<Vec<String>, Error> {
    let sorted = sorted(applicants)?;
    let mut stream = Stream::new(lottery, seed);
    let mut order = Vec::with_capacity(sorted.len());
    for tier in sorted.chunk_by(|a, b| a.tier == b.tier) {
        let mut keys: Vec<String> = tier.iter().map(|a| a.key.clone()).collect();
        for i in (1..keys.len()).rev() {
            let j = stream.below(i as u64 + 1) as usize;
            keys.swap(i, j);
        }
        order.extend(keys);
    }
    Ok(order)
}

/// A drawn lottery as published on the compound's disclosure page: everything anyone needs to
/// draw it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    pub lottery_id: Uuid,
    pub algorithm: String,
    pub commitment: String,
    /// 64 hexadecimal digits, revealed at the draw.
    pub seed: String,
    /// How many spaces were drawn for.
    pub places: u32,
    pub applicants: Vec<Applicant>,
    /// The digest of `applicants` published when applications closed; checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicants_digest: Option<String>,
    /// The published order: winners first.
    pub order: Vec<String>,
}

/// What recomputing a published lottery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verdict {
    /// The revealed seed and the number of places are the ones committed to before
    /// applications opened.
    pub commitment_matches: bool,
    /// The published applicants digest, if any, is the digest of the published applicants.
    pub digest_matches: bool,
    /// The published order is the one the seed and the applicants give.
    pub order_matches: bool,
    pub applicants_digest: String,
    /// The order recomputed here.
    pub order: Vec<String>,
    /// Its first `places` keys.
    pub winners: Vec<String>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.commitment_matches && self.digest_matches && self.order_matches
    }
}

/// Draws a published lottery again and compares.
pub fn verify(published: &Published) -> Result<Verdict, Error> {
    if published.algorithm != ALGORITHM {
        return Err(Error::UnknownAlgorithm(published.algorithm.clone()));
    }
    let seed = Seed::parse(&published.seed)?;
    let order = draw(published.lottery_id, &seed, &published.applicants)?;
    let winners = order
        .iter()
        .take(published.places as usize)
        .cloned()
        .collect();
    let digest = applicants_digest(&published.applicants)?;
    Ok(Verdict {
        commitment_matches: seed
            .commitment(published.lottery_id, published.places)
            .eq_ignore_ascii_case(published.commitment.trim()),
        digest_matches: published
            .applicants_digest
            .as_deref()
            .is_none_or(|d| d.trim().eq_ignore_ascii_case(&digest)),
        order_matches: order == published.order,
        applicants_digest: digest,
        order,
        winners,
    })
}

/// How a drawn lottery's offers stand at an instant, counted. Offers go down the draw's
/// order one applicant at a time, so `made` is also how far down the order they have reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferCounts {
    /// Offers made so far.
    pub made: usize,
    /// Offers neither answered nor expired.
    pub open: usize,
    /// Offers accepted and not lapsed: places the lottery has given.
    pub taken: usize,
    /// Of `taken`, those not paid for yet (no rental contracted, or its hold unpaid): they may
    /// still lapse and pass down the list.
    pub unpaid: usize,
}

/// Where a lottery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Course {
    /// Announced, its applications open or closed, not drawn: its spaces wait for the draw.
    Undrawn,
    /// Drawn, its places still being given: an offer is open, a taken place is not paid for
    /// yet, or a free place has an applicant left to offer it to.
    Allotting,
    /// Over: every offer answered or expired, every taken place paid for, and either every
    /// place taken or nobody left on the list. From then on its spaces are the office's again
    /// (a space whose winner's term ends is free to rent or to put in a new lottery).
    Settled,
}

/// The lottery's course from what is counted at an instant. Settled is final: with no open
/// offer, nothing unpaid and no place left to offer to anyone, no answer, payment or lapse can
/// change the counts any more.
pub fn course(drawn: bool, places: usize, applicants: usize, offers: OfferCounts) -> Course {
    if !drawn {
        return Course::Undrawn;
    }
    let place_to_offer = offers.taken < places && offers.made < applicants;
    if offers.open > 0 || offers.unpaid > 0 || place_to_offer {
        Course::Allotting
    } else {
        Course::Settled
    }
}

#[cfg(test)]
mod course_tests {
    use super::*;

    fn counts(made: usize, open: usize, taken: usize, unpaid: usize) -> OfferCounts {
        OfferCounts {
            made,
            open,
            taken,
            unpaid,
        }
    }

    #[test]
    fn a_lottery_is_over_when_its_places_are_paid_for_or_its_list_runs_out() {
        // Undrawn whatever the counts.
        assert_eq!(course(false, 1, 0, counts(0, 0, 0, 0)), Course::Undrawn);
        // Drawn with nobody applying: nothing to give.
        assert_eq!(course(true, 2, 0, counts(0, 0, 0, 0)), Course::Settled);
        // One place, three applicants: the winner's offer is open.
        assert_eq!(course(true, 1, 3, counts(1, 1, 0, 0)), Course::Allotting);
        // It expired and the next one is not offered yet (offers pass on at the next read).
        assert_eq!(course(true, 1, 3, counts(1, 0, 0, 0)), Course::Allotting);
        // Accepted, not paid: it may still lapse to the next applicant.
        assert_eq!(course(true, 1, 3, counts(2, 0, 1, 1)), Course::Allotting);
        // Accepted and paid: over, with two applicants never reached (wave 1 kept it live).
        assert_eq!(course(true, 1, 3, counts(2, 0, 1, 0)), Course::Settled);
        // Two places, one applicant, who took one: over, the other place is free.
        assert_eq!(course(true, 2, 1, counts(1, 0, 1, 0)), Course::Settled);
        // Two places, everyone declined: over.
        assert_eq!(course(true, 2, 2, counts(2, 0, 0, 0)), Course::Settled);
        // Two places, one taken, an applicant left for the other: not over.
        assert_eq!(course(true, 2, 3, counts(2, 0, 1, 0)), Course::Allotting);
    }

    /// One step a running lottery can take, as the service takes them.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        /// A free place offered to the next applicant (at a read).
        PassOn,
        /// An open offer accepted; `paid` when the rental is paid at once.
        Accept {
            paid: bool,
        },
        Decline,
        /// An open offer left unanswered past its time.
        Expire,
        /// An accepted place paid for.
        Pay,
        /// An accepted place's hold run out unpaid.
        Lapse,
    }

    /// `event` applied to `c` if the service could take it in that state.
    fn step(places: usize, applicants: usize, c: OfferCounts, event: Event) -> OfferCounts {
        let mut c = c;
        match event {
            Event::PassOn if c.taken + c.open < places && c.made < applicants => {
                c.made += 1;
                c.open += 1;
            }
            Event::Accept { paid } if c.open > 0 => {
                c.open -= 1;
                c.taken += 1;
                c.unpaid += usize::from(!paid);
            }
            Event::Decline | Event::Expire if c.open > 0 => c.open -= 1,
            Event::Pay if c.unpaid > 0 => c.unpaid -= 1,
            Event::Lapse if c.unpaid > 0 => {
                c.unpaid -= 1;
                c.taken -= 1;
            }
            _ => {}
        }
        c
    }

    fn event() -> impl proptest::strategy::Strategy<Value = Event> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just(Event::PassOn),
            1 => any::<bool>().prop_map(|paid| Event::Accept { paid }),
            1 => Just(Event::Decline),
            1 => Just(Event::Expire),
            1 => Just(Event::Pay),
            1 => Just(Event::Lapse),
        ]
    }

    proptest::proptest! {
        /// Whatever happens, once a lottery is settled nothing it can still do changes it, and
        /// it settled only with every place taken or its list used up.
        #[test]
        fn settled_is_final_and_wastes_neither_place_nor_applicant(
            places in 1usize..5,
            applicants in 0usize..8,
            events in proptest::collection::vec(event(), 0..60),
        ) {
            let mut c = OfferCounts::default();
            let mut settled_at: Option<OfferCounts> = None;
            for e in events {
                c = step(places, applicants, c, e);
                match (course(true, places, applicants, c), settled_at) {
                    (Course::Settled, None) => {
                        proptest::prop_assert!(c.taken == places || c.made == applicants);
                        settled_at = Some(c);
                    }
                    (Course::Settled, Some(then)) => proptest::prop_assert_eq!(c, then),
                    (Course::Allotting, Some(then)) => {
                        proptest::prop_assert!(false, "revived from {:?} to {:?}", then, c)
                    }
                    (Course::Allotting, None) => {}
                    (Course::Undrawn, _) => proptest::prop_assert!(false, "undrawn"),
                }
            }
        }
    }
}
