//! A demo compound for local runs (`--demo`): one property firm, one compound with a lot of
//! 20 visitor places, an entry and an exit gate, owners, vehicles, a monthly permit, an exempt
//! ambulance and a blocklisted plate. The credentials are fixed and public (see the README),
//! which is fine for a demo and why `--demo` must never be used in production.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use parkshare_domain::decision::Direction;
use parkshare_domain::money::Money;
use parkshare_domain::policy::GatePolicy;
use parkshare_tariff::regulated::{check_filing, Limits, Price, Standard};
use parkshare_tariff::Tariff;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::credentials::{self, Actor, Entry, Kind};
use crate::store::registry::{self, NewOwner, NewPermit};
use crate::store::tariffs::{self, NewStandard, NewVersion};

pub const DEMO_STAFF_TOKEN: &str = "demo-staff-token";
pub const DEMO_ENTRY_SECRET: &str = "demo-entry-gate-secret";
pub const DEMO_EXIT_SECRET: &str = "demo-exit-gate-secret";

/// Loads the demo compound unless it is already there.
pub async fn load(state: &AppState) -> Result<(), ApiError> {
    if registry::staff_by_token(&state.db, &auth::digest(DEMO_STAFF_TOKEN))
        .await?
        .is_some()
    {
        tracing::info!("demo compound already loaded");
        return Ok(());
    }
    let tenant = Uuid::new_v4();
    crate::operator::create_with_token(state, tenant, "演示物业服务有限公司", DEMO_STAFF_TOKEN)
        .await?;
    let mut tx = state.db.begin().await?;
    let compound = registry::insert_compound(
        &mut *tx,
        tenant,
        "阳光花园",
        "Asia/Shanghai",
        &GatePolicy::default(),
    )
    .await?;
    let tariff = Tariff::simple(15, Money::from_fen(300), Some(Money::from_fen(2000)));
    let lot = registry::insert_lot(
        &mut *tx,
        tenant,
        compound.id,
        "地面停车场",
        (20, 0),
        &tariff,
    )
    .await?;
    let entry = registry::insert_gate(
        &mut *tx,
        tenant,
        lot.id,
        "东门入口",
        Direction::Entry,
        &auth::digest(DEMO_ENTRY_SECRET),
    )
    .await?;
    let exit = registry::insert_gate(
        &mut *tx,
        tenant,
        lot.id,
        "东门出口",
        Direction::Exit,
        &auth::digest(DEMO_EXIT_SECRET),
    )
    .await?;
    for gate in [&entry, &exit] {
        let issued = Entry::issued(Some(tenant), Kind::Device, gate.id, Actor::Operator);
        credentials::record(&mut *tx, &issued).await?;
    }
    let zhang = NewOwner {
        unit: "1-1-101",
        name: "张伟",
        floor_area_m2: Decimal::new(8950, 2),
        phone: None,
    };
    let zhang = registry::insert_owner(&mut *tx, tenant, compound.id, &zhang).await?;
    let li = NewOwner {
        unit: "2-3-502",
        name: "李娜",
        floor_area_m2: Decimal::new(12030, 2),
        phone: None,
    };
    let li = registry::insert_owner(&mut *tx, tenant, compound.id, &li).await?;
    registry::insert_space(&mut *tx, tenant, lot.id, "A-001", "owned", Some(zhang.id)).await?;
    registry::insert_space(&mut *tx, tenant, lot.id, "C-001", "common", None).await?;
    let car =
        registry::insert_vehicle(&mut *tx, tenant, compound.id, "云A12345", "small", zhang.id)
            .await?;
    registry::insert_vehicle(
        &mut *tx,
        tenant,
        compound.id,
        "云AD67890",
        "new_energy",
        li.id,
    )
    .await?;
    let today = state.clock.now().date_naive();
    let year_end = today
        .with_month(12)
        .and_then(|d| d.with_day(31))
        .unwrap_or(today);
    let permit = NewPermit {
        vehicle_id: car.id,
        kind: "monthly",
        lot_id: None,
        space_id: None,
        valid_from: today,
        valid_to: Some(year_end),
    };
    registry::insert_permit(&mut *tx, tenant, compound.id, &permit).await?;
    registry::upsert_exempt_vehicle(
        &mut *tx,
        tenant,
        compound.id,
        "云A12010",
        "ambulance",
        "市一院救护车",
    )
    .await?;
    registry::upsert_blocklisted(&mut *tx, tenant, compound.id, "云A66666", "多次逃费").await?;
    let now = state.clock.now();
    file_demo_tariff(&mut tx, tenant, compound.id, lot.id, &tariff, now).await?;
    tx.commit().await?;
    crate::sync::rebuild_lot(state, lot.id, crate::occupancy::RebuildMode::Force).await?;
    tracing::info!(
        compound_id = %compound.id, lot_id = %lot.id, entry_gate_id = %entry.id, exit_gate_id = %exit.id,
        "demo compound loaded (credentials: see README)"
    );
    Ok(())
}

/// Files the demo lot's tariff against an illustrative standard (¥3 an hour, ¥20 a day), so the
/// price board shows a filing number. It goes through the same filing check as the admin API.
/// Files the demo lot's tariff, effective from the start of `now`'s year.
async fn file_demo_tariff(
    tx: &mut sqlx::PgConnection,
    tenant: Uuid,
    compound_id: Uuid,
    lot_id: Uuid,
    tariff: &Tariff,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let limits = Limits {
        per_hour: Some(Price::Max {
            amount: Money::from_fen(300),
        }),
        per_24h: Some(Price::Max {
            amount: Money::from_fen(2000),
        }),
        monthly: Some(Price::Max {
            amount: Money::from_fen(20000),
        }),
    };
    let standard = Standard {
        small: limits,
        large: None,
        new_energy: None,
    };
    check_filing(tariff, &standard, chrono_tz::Asia::Shanghai)
        .map_err(|v| ApiError::Internal(anyhow::anyhow!("demo tariff does not file: {v}")))?;
    let new = NewStandard {
        name: "演示：住宅小区露天停车位收费标准",
        document: "演示文件（非真实文号）",
        space_kind: "common",
        standard: &standard,
    };
    let standard = tariffs::insert_standard(&mut *tx, tenant, compound_id, &new).await?;
    // A fresh demo has no stays yet, so the filing can take effect from the start of the year.
    let effective_from = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0)
        .single()
        .map_or(now, |t| t.with_timezone(&Utc));
    let version = NewVersion {
        lot_id,
        version: 1,
        tariff,
        standard_id: standard.id,
        basis: "authority_standard",
        resolution_no: None,
        resolution_date: None,
        filing_no: &crate::admin::tariffs::filing_no(
            effective_from,
            chrono_tz::Asia::Shanghai,
            lot_id,
            1,
        ),
        effective_from,
    };
    tariffs::insert_version(&mut *tx, tenant, &version).await?;
    Ok(())
}
