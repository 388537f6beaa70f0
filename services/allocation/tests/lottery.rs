//! The lottery's properties, and its agreement with the independent Python in docs/lottery.md.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use parkshare_allocation::lottery::{
    applicants_digest, draw, verify, Applicant, Error, Published, Seed, ALGORITHM,
};
use proptest::prelude::*;
use uuid::Uuid;

fn applicant(tier: u8, key: &str) -> Applicant {
    Applicant {
        tier,
        key: key.to_owned(),
    }
}

fn units(n: usize) -> Vec<Applicant> {
    (0..n)
        .map(|i| {
            applicant(
                u8::from(i % 3 == 0),
                &format!("{}-{}-{:03}", i % 7, i % 3, i),
            )
        })
        .collect()
}

fn published(lottery: Uuid, seed: &Seed, places: u32, applicants: Vec<Applicant>) -> Published {
    let order = draw(lottery, seed, &applicants).unwrap_or_else(|e| panic!("{e}"));
    Published {
        lottery_id: lottery,
        algorithm: ALGORITHM.to_owned(),
        commitment: seed.commitment(lottery, places),
        seed: seed.to_hex(),
        places,
        applicants_digest: Some(applicants_digest(&applicants).unwrap_or_default()),
        applicants,
        order,
    }
}

fn seed(byte: u8) -> Seed {
    Seed::from_bytes([byte; 32])
}

const LOTTERY: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);

/// The Python verifier of docs/lottery.md, run on `published`: its JSON answer.
fn python_verdict(published: &Published) -> serde_json::Value {
    let docs = include_str!("../../../docs/lottery.md");
    let script = docs
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("docs/lottery.md has no python block"));
    let dir = tempfile_dir();
    let script_path = dir.join("verify.py");
    let input_path = dir.join("published.json");
    std::fs::write(&script_path, script).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &input_path,
        serde_json::to_vec(published).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("python3")
        .arg(&script_path)
        .arg(&input_path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("python3 not runnable ({e})"));
    let _ = std::io::stderr().write_all(&output.stderr);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn tempfile_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("parkshare-lottery-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn the_documented_python_draws_the_same_order_as_the_service() {
    // Sizes that cross a block (4 words) and a tier boundary, and units in Chinese.
    for (n, byte) in [(1, 1u8), (2, 2), (5, 3), (17, 4), (60, 5)] {
        let mut applicants = units(n);
        if n > 2 {
            applicants[1].key = "东区-3-1-502".to_owned();
        }
        let published = published(LOTTERY, &seed(byte), 3, applicants);
        let verdict = python_verdict(&published);
        assert_eq!(verdict["commitment_matches"], true, "{verdict}");
        assert_eq!(verdict["order_matches"], true, "n = {n}: {verdict}");
        assert_eq!(
            verdict["winners"],
            serde_json::json!(published.order.iter().take(3).collect::<Vec<_>>())
        );
    }
}

#[test]
fn a_fixed_seed_gives_a_fixed_order_for_ever() {
    // Pinned so that a change to the algorithm cannot pass unnoticed: a published lottery
    // must verify the same way in every later version.
    let order = draw(
        LOTTERY,
        &seed(7),
        &[
            applicant(0, "1-1-101"),
            applicant(0, "1-1-102"),
            applicant(0, "1-2-201"),
            applicant(1, "2-1-101"),
            applicant(1, "2-1-102"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        order,
        ["1-1-102", "1-1-101", "1-2-201", "2-1-101", "2-1-102"],
        "tier 0 first, then tier 1"
    );
    // The same figure from Python's hashlib: sha256(b"parkshare-lottery-v1 commitment\n"
    // + b"01900000-0000-7000-8000-000000000001\n2\n" + bytes([7] * 32)).
    assert_eq!(
        seed(7).commitment(LOTTERY, 2),
        "84a406d3a0fc69e1fe3e8fb4e27a3457da86055bfd883486b78d96c1b87db9ab"
    );
}

#[test]
fn a_changed_seed_or_order_or_list_fails_the_check() {
    let good = published(LOTTERY, &seed(9), 2, units(12));
    let verdict = verify(&good).unwrap_or_else(|e| panic!("{e}"));
    assert!(verdict.holds(), "{verdict:?}");
    assert_eq!(verdict.winners, good.order[..2].to_vec());

    // Another seed revealed than the one committed to.
    let mut other_seed = good.clone();
    other_seed.seed = seed(10).to_hex();
    let verdict = verify(&other_seed).unwrap_or_else(|e| panic!("{e}"));
    assert!(!verdict.commitment_matches);

    // Winners swapped with the waiting list.
    let mut other_order = good.clone();
    other_order.order.swap(0, 5);
    assert!(
        !verify(&other_order)
            .unwrap_or_else(|e| panic!("{e}"))
            .order_matches
    );

    // An applicant dropped after the close: another digest, another order.
    let mut dropped = good.clone();
    dropped.applicants.retain(|a| a.key != good.order[0]);
    let verdict = verify(&dropped).unwrap_or_else(|e| panic!("{e}"));
    assert!(!verdict.order_matches);
    assert_ne!(
        verdict.applicants_digest,
        applicants_digest(&good.applicants).unwrap_or_else(|e| panic!("{e}"))
    );

    // More winners claimed than committed to.
    let mut more_places = good.clone();
    more_places.places += 3;
    assert!(
        !verify(&more_places)
            .unwrap_or_else(|e| panic!("{e}"))
            .commitment_matches
    );

    // A digest that is not the applicants'.
    let mut other_digest = good.clone();
    other_digest.applicants_digest = Some("00".repeat(32));
    let verdict = verify(&other_digest).unwrap_or_else(|e| panic!("{e}"));
    assert!(!verdict.digest_matches && !verdict.holds());

    // Another lottery's id: the same seed commits differently.
    let mut other_lottery = good;
    other_lottery.lottery_id = Uuid::from_u128(2);
    assert!(
        !verify(&other_lottery)
            .unwrap_or_else(|e| panic!("{e}"))
            .commitment_matches
    );
}

#[test]
fn bad_published_data_is_named_not_drawn() {
    let mut doc = published(LOTTERY, &seed(1), 1, units(3));
    doc.seed = "zz".to_owned();
    assert_eq!(verify(&doc), Err(Error::SeedNotHex));

    let mut doc = published(LOTTERY, &seed(1), 1, units(3));
    doc.algorithm = "mt19937".to_owned();
    assert!(matches!(verify(&doc), Err(Error::UnknownAlgorithm(_))));

    let twice = [applicant(0, "1-1-101"), applicant(1, "1-1-101")];
    assert_eq!(
        draw(LOTTERY, &seed(1), &twice),
        Err(Error::DuplicateKey("1-1-101".to_owned()))
    );
    assert!(matches!(
        draw(LOTTERY, &seed(1), &[applicant(0, "a\tb")]),
        Err(Error::BadKey(_))
    ));
    assert!(matches!(
        draw(LOTTERY, &seed(1), &[applicant(0, "")]),
        Err(Error::BadKey(_))
    ));
}

#[test]
fn the_seed_is_never_printed_by_debug() {
    assert_eq!(format!("{:?}", seed(3)), "Seed(…)");
}

#[test]
fn every_applicant_wins_first_place_about_equally_often() {
    // 5 applicants of one tier, 20,000 seeds: each should be first 4,000 times. Pearson's
    // chi-square with 4 degrees of freedom exceeds 18.47 with probability 0.001; the seeds are
    // fixed, so this is deterministic, but a biased draw fails it — e.g. an off-by-one in
    // Fisher–Yates (`j` below `i` instead of `i + 1`, which never leaves anyone in place) or a
    // tier sort that leaks into the shuffle.
    let applicants = units(5)
        .into_iter()
        .map(|a| applicant(0, &a.key))
        .collect::<Vec<_>>();
    let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
    let mut positions: BTreeMap<(String, usize), u32> = BTreeMap::new();
    let rounds = 20_000u32;
    for round in 0..rounds {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&round.to_be_bytes());
        let order =
            draw(LOTTERY, &Seed::from_bytes(bytes), &applicants).unwrap_or_else(|e| panic!("{e}"));
        *firsts.entry(order[0].clone()).or_default() += 1;
        for (position, key) in order.into_iter().enumerate() {
            *positions.entry((key, position)).or_default() += 1;
        }
    }
    let expected = f64::from(rounds) / 5.0;
    let chi_square: f64 = firsts
        .values()
        .map(|&seen| (f64::from(seen) - expected).powi(2) / expected)
        .sum();
    assert_eq!(firsts.len(), 5, "{firsts:?}");
    assert!(chi_square < 18.47, "chi² {chi_square:.2}: {firsts:?}");
    // And every applicant lands in every place, roughly as often.
    for (&(ref key, position), &seen) in &positions {
        let off = (f64::from(seen) - expected).abs() / expected;
        assert!(off < 0.06, "{key} at {position}: {seen} of {rounds}");
    }
}

proptest! {
    #[test]
    fn a_draw_is_a_permutation_that_respects_tiers_and_ignores_input_order(
        tiers in proptest::collection::vec(0u8..3, 0..40),
        byte in any::<u8>(),
        rotate in 0usize..40,
    ) {
        let applicants: Vec<Applicant> = tiers
            .iter()
            .enumerate()
            .map(|(i, &tier)| applicant(tier, &format!("unit-{i}")))
            .collect();
        let order = draw(LOTTERY, &seed(byte), &applicants).unwrap_or_else(|e| panic!("{e}"));

        // Everyone once, nobody twice.
        let drawn: BTreeSet<&String> = order.iter().collect();
        prop_assert_eq!(drawn.len(), applicants.len());
        prop_assert_eq!(order.len(), applicants.len());

        // A lower tier always before a higher one.
        let tier_of: BTreeMap<&String, u8> = applicants.iter().map(|a| (&a.key, a.tier)).collect();
        let tiers_in_order: Vec<u8> = order.iter().map(|k| tier_of[k]).collect();
        prop_assert!(tiers_in_order.windows(2).all(|w| w[0] <= w[1]));

        // The order applicants were listed in does not matter; the same seed, the same draw.
        let mut shuffled = applicants.clone();
        if !shuffled.is_empty() {
            let by = rotate % shuffled.len();
            shuffled.rotate_left(by);
        }
        prop_assert_eq!(draw(LOTTERY, &seed(byte), &shuffled).unwrap_or_default(), order);
    }

    #[test]
    fn winners_are_never_more_than_the_places(n in 0usize..30, places in 0u32..40) {
        let doc = published(LOTTERY, &seed(4), places, units(n));
        let verdict = verify(&doc).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!(verdict.holds());
        prop_assert_eq!(verdict.winners.len(), n.min(places as usize));
    }
}
