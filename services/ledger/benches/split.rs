//! How fast a payment becomes a balanced entry, and how fast a period's common revenue is
//! allocated over the owners of a large compound. Figures are in the crate's README.

use criterion::{criterion_group, criterion_main, Criterion};
use parkshare_domain::money::Money;
use parkshare_ledger::{allocate, payment_entry, Parties, RevenuePolicy, Source, SpaceUse};
use rust_decimal::Decimal;
use uuid::Uuid;

fn bench(c: &mut Criterion) {
    let parties = Parties {
        tenant_id: Uuid::from_u128(1),
        compound_id: Uuid::from_u128(2),
    };
    let policy = RevenuePolicy::default();
    let space = SpaceUse::SharedPrivate {
        owner_id: Uuid::from_u128(3),
    };
    c.bench_function("payment_entry", |b| {
        b.iter(|| {
            payment_entry(
                std::hint::black_box(Money::from_fen(1234)),
                Source::Provider,
                space,
                &policy,
                parties,
            )
        })
    });
    let areas: Vec<Decimal> = (0..3000)
        .map(|i| Decimal::new(6000 + (i * 37) % 9000, 2))
        .collect();
    c.bench_function("allocate 3000 owners", |b| {
        b.iter(|| allocate(std::hint::black_box(Money::from_fen(12_345_678)), &areas))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
