//! A demo compound for local runs (`--demo`): one property firm, one compound with a lot of
//! 20 visitor places, an entry and an exit gate, owners, vehicles, a monthly permit, an exempt
//! ambulance and a blocklisted plate. The credentials are fixed and public (see the README),
//! which is fine for a demo and why `--demo` must never be used in production.

use chrono::{Datelike, Utc};
use parkshare_domain::decision::Direction;
use parkshare_domain::money::Money;
use parkshare_domain::policy::GatePolicy;
use parkshare_domain::tariff::Tariff;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::auth;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::registry::{self, NewOwner, NewPermit};

pub const DEMO_STAFF_TOKEN: &str = "demo-staff-token";
pub const DEMO_ENTRY_SECRET: &str = "demo-entry-gate-secret";
pub const DEMO_EXIT_SECRET: &str = "demo-exit-gate-secret";

/// Loads the demo compound unless it is already there.
pub async fn load(state: &AppState) -> Result<(), ApiError> {
    if registry::tenant_by_staff_token(&state.db, &auth::digest(DEMO_STAFF_TOKEN))
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
    let lot =
        registry::insert_lot(&mut *tx, tenant, compound.id, "地面停车场", 20, &tariff).await?;
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
    let today = Utc::now().date_naive();
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
    tx.commit().await?;
    crate::sync::rebuild_lot(state, lot.id, crate::occupancy::RebuildMode::Force).await?;
    tracing::info!(
        compound_id = %compound.id, lot_id = %lot.id, entry_gate_id = %entry.id, exit_gate_id = %exit.id,
        "demo compound loaded (credentials: see README)"
    );
    Ok(())
}
