//! Passages that already happened: a camera's offline buffer replayed late, a lane that
//! failed open, a barrier a staff member lifted. Nothing here opens a barrier; each event is
//! recorded and the stays it belongs to are reconstructed by the real capture times, so the
//! order in which the entry and exit cameras drain their buffers does not matter:
//!
//! - an exit with an open stay closes it at the capture time and bills it by the real times;
//! - an exit with no stay records a closed stay without an entry (`offline_exit`), listed for
//!   staff until its entry arrives;
//! - an entry first looks for such a stay (exit after this entry, no entry yet) and completes
//!   it, billing it by the real times; otherwise it opens a stay at the capture time and the
//!   car takes its place even past capacity (it is inside);
//! - an entry while the plate already has an open stay is a second entry, listed for staff
//!   (unless it is the same passage: within the gate's duplicate window).

use chrono::{DateTime, Duration, Utc};
use parkshare_domain::decision::{
    plan_entry, Decision, Direction, EntryPlan, Origin, Pool, Reason, SessionKind,
};
use parkshare_domain::money::Money;
use parkshare_tariff::engine::LineCode;
use parkshare_tariff::Bill;
use sqlx::PgConnection;
use uuid::Uuid;

use super::record::{self, anomaly, decision_into, new_stay, Began, Effects, Failure, Place};
use crate::billing::{self, LotRules, Priced};
use crate::error::ApiError;
use crate::sharing::gate as shared;
use crate::state::lanes::Event;
use crate::store::answers::GateDecision;
use crate::store::registry::{self, GateContext};
use crate::store::sessions::{self, Session};
use crate::store::tariffs;

/// Records a passage in the run's transaction (`now`: the service's clock) and returns its
/// answer; its writes and the places to count or give back after the commit go in `fx`.
pub(super) async fn record(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    gate: &GateContext,
    ev: &Event,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    if let Some(r) =
        sessions::response_by_device_event(&mut *tx, gate.gate_id, &ev.device_event_id).await?
    {
        return record::replayed(r, ev);
    }
    match gate.direction {
        Direction::Entry => entry(tx, gate, ev, fx).await,
        Direction::Exit => exit(tx, now, gate, ev, fx).await,
    }
}

/// Stores the recorded passage's answer; a fail-open or manual passage is also listed for
/// staff, with the stay it belongs to.
async fn recorded(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    session_id: Option<Uuid>,
    amount_due: Money,
    priced: Option<&Priced>,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let kind = match ev.source {
        "fail_open" => Some(("fail_open", "the lane opened on its fail-open policy")),
        "manual" => Some(("manual_open", "a staff member opened the barrier")),
        _ => None,
    };
    if let Some((kind, what)) = kind {
        let detail = format!("{what} at {}", ev.captured_at);
        anomaly(&mut *tx, gate, session_id, kind, &ev.plate, detail).await?;
    }
    // Every recorded passage answers so: nothing opens, what is still owed is said.
    let decision = Decision::new(Reason::OfflineRecorded, gate.direction, amount_due);
    Ok(decision_into(
        &mut fx.writes,
        gate,
        ev,
        session_id,
        &decision,
        priced,
    ))
}

/// The car is inside whatever the capacity: it is counted once the run commits.
fn inside(gate: &GateContext, ev: &Event, pool: Pool, fx: &mut Effects) {
    fx.counted.push(Place {
        lot_id: gate.lot_id,
        plate: ev.plate.clone(),
        pool,
    });
}

async fn entry(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let plate = ev.plate.as_str();
    let tariff_version_id =
        tariffs::version_id_in_force(&mut *tx, gate.lot_id, ev.captured_at).await?;

    if let Some(stay) =
        sessions::entryless_after(&mut *tx, gate.lot_id, plate, ev.captured_at).await?
    {
        sessions::set_late_entry(
            &mut *tx,
            stay.id,
            ev.captured_at,
            gate.gate_id,
            tariff_version_id,
        )
        .await?;
        let detail = match stay.exited_at {
            Some(exited_at) => {
                let priced = reprice(tx, gate, stay.id, exited_at).await?;
                format!(
                    "entry captured at {} arrived after the exit at {exited_at}; billed ¥{} by the real times",
                    ev.captured_at, priced.bill.total
                )
            }
            None => format!(
                "entry captured at {} arrived while the car waits at the exit; it will be billed by the real times",
                ev.captured_at
            ),
        };
        anomaly(
            tx,
            gate,
            Some(stay.id),
            "offline_reconstructed",
            &ev.plate,
            detail,
        )
        .await?;
        if stay.exited_at.is_none() {
            // Still inside: it holds a place from now on.
            inside(gate, ev, stay.pool, fx);
        }
        return recorded(tx, gate, ev, Some(stay.id), Money::ZERO, None, fx).await;
    }

    if let Some(open) = sessions::open_session(&mut *tx, gate.lot_id, plate).await? {
        let window = Duration::seconds(i64::from(gate.policy.duplicate_window_s).max(1));
        match open.entered_at {
            Some(at) if (at - ev.captured_at).abs() <= window => {
                // The same passage, read twice.
                return recorded(tx, gate, ev, Some(open.id), Money::ZERO, None, fx).await;
            }
            // The open stay began before this entry: its car left unseen in between (the
            // exit camera's record of it may still come: `missed_exit_before`). Closed as a
            // missed exit, as a live re-entry closes it; this entry opens its own stay.
            Some(at) if at < ev.captured_at => {
                record::close_missed_exit(tx, gate, ev, open.id).await?;
            }
            _ => {
                let detail = format!(
                    "entry captured at {} while the stay entered at {} is open",
                    ev.captured_at,
                    open.entered_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "?".into())
                );
                anomaly(tx, gate, Some(open.id), "two_entries", &ev.plate, detail).await?;
                return recorded(tx, gate, ev, Some(open.id), Money::ZERO, None, fx).await;
            }
        }
    }

    let read = record::plate_read(gate, ev, 0);
    let facts = registry::plate_facts_of(&mut *tx, std::slice::from_ref(&read))
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no plate facts for a read")))?;
    // A plate the lane would have refused is inside all the same: it stays as a visitor.
    let kind = match plan_entry(record::standing_of(&facts, &ev.plate)) {
        EntryPlan::Admit(kind) => kind,
        EntryPlan::Refuse(_) => SessionKind::Visitor,
    };
    let session_id = record::new_id();
    let began = Began::Entered {
        kind,
        pool: kind.pool(),
        class: record::class_of(ev, facts.vehicle_class.map(|w| w.0)),
        tariff_version_id,
        space_id: None,
    };
    sessions::insert_session(tx, &new_stay(session_id, gate, ev, &began)).await?;
    // The car may have stood at an exit before this entry was recorded, and been refused
    // there for want of it: the stay ends at that read.
    if let Some((exit_at, exit_gate_id)) =
        sessions::refused_exit_after(&mut *tx, gate.lot_id, plate, ev.captured_at).await?
    {
        let owed = close_at_refused_exit(tx, gate, ev, session_id, exit_at, exit_gate_id).await?;
        return recorded(tx, gate, ev, Some(session_id), owed, None, fx).await;
    }
    inside(gate, ev, kind.pool(), fx);
    recorded(tx, gate, ev, Some(session_id), Money::ZERO, None, fx).await
}
/// Closes the stay just opened by a late entry at the exit read that was refused
/// `no_entry_record` before the entry was recorded, billed by the real times, and lists it
/// for staff. The stay is marked, so that the car's next exit read (it may still be at the
/// barrier) finds it and is decided on it. Returns what is owed.
async fn close_at_refused_exit(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    session_id: Uuid,
    exit_at: chrono::DateTime<chrono::Utc>,
    exit_gate_id: Uuid,
) -> Result<Money, Failure> {
    let stay = sessions::session_for_update(&mut *tx, gate.tenant_id, session_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("session {session_id} vanished")))?;
    let priced = billing::price(&mut *tx, &LotRules::from(gate), &stay, exit_at).await?;
    let fee = priced.bill.total;
    sessions::bill_session(
        &mut *tx,
        session_id,
        &priced.bill,
        Some((exit_at, exit_gate_id)),
    )
    .await?;
    sessions::mark_anomaly(&mut *tx, session_id, sessions::CLOSED_AT_REFUSED_EXIT).await?;
    let detail = format!(
        "entry captured at {} was recorded after the exit read at {exit_at}, which was refused \
         no_entry_record; the stay is closed there, ¥{fee} owed",
        ev.captured_at
    );
    anomaly(
        &mut *tx,
        gate,
        Some(session_id),
        "offline_reconstructed",
        &ev.plate,
        detail,
    )
    .await?;
    Ok(fee)
}

/// Prices a closed stay again now that its entry is known, and stores the bill.
async fn reprice(
    tx: &mut PgConnection,
    gate: &GateContext,
    session_id: Uuid,
    exited_at: chrono::DateTime<chrono::Utc>,
) -> Result<Priced, Failure> {
    let stay = sessions::session_for_update(&mut *tx, gate.tenant_id, session_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("session {session_id} vanished")))?;
    let priced = billing::price(&mut *tx, &LotRules::from(gate), &stay, exited_at).await?;
    sessions::bill_session(&mut *tx, session_id, &priced.bill, None).await?;
    Ok(priced)
}

async fn exit(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    gate: &GateContext,
    ev: &Event,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let open = match sessions::open_session(&mut *tx, gate.lot_id, ev.plate.as_str()).await? {
        Some(stay) => Some(stay),
        // A misread plate, or the car refused before its late entry was recorded, which
        // staff let out: that stay ends here.
        None => record::stay_leaving(tx, gate, ev).await?,
    };
    let ends_open = |stay: &Session| stay.entered_at.is_none_or(|at| at <= ev.captured_at);
    // The exit of an earlier visit, closed as a missed exit when the car's next entry was
    // recorded: it ends there.
    let visit = match &open {
        Some(stay) if ends_open(stay) => None,
        _ => {
            let plate = ev.plate.as_str();
            sessions::missed_exit_before(&mut *tx, gate.lot_id, plate, ev.captured_at).await?
        }
    };
    match (open, visit) {
        (Some(stay), _) if ends_open(&stay) => {
            fx.released.extend(Place::of_stay(&stay));
            close(tx, now, gate, ev, stay, fx).await
        }
        // The car's place, if it is inside, is its open stay's.
        (_, Some(visit)) => {
            sessions::mark_anomaly(&mut *tx, visit.id, "offline_reconstructed").await?;
            close(tx, now, gate, ev, visit, fx).await
        }
        (Some(later), None) => {
            // This exit ends an earlier stay than the open one.
            let detail = format!(
                "exit captured at {} before the open stay's entry at {}",
                ev.captured_at,
                later.entered_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
            anomaly(
                tx,
                gate,
                Some(later.id),
                "exit_before_entry",
                &ev.plate,
                detail,
            )
            .await?;
            entryless(tx, gate, ev, fx).await
        }
        (None, None) => entryless(tx, gate, ev, fx).await,
    }
}

/// Closes the stay at the capture time, billed by the real times; what is unpaid stays owed.
/// (The caller gives back the car's place when the stay held it.)
async fn close(
    tx: &mut PgConnection,
    now: DateTime<Utc>,
    gate: &GateContext,
    ev: &Event,
    stay: Session,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let priced = billing::price(tx, &LotRules::from(gate), &stay, ev.captured_at).await?;
    let fee = priced.bill.total;
    sessions::bill_session(
        tx,
        stay.id,
        &priced.bill,
        Some((ev.captured_at, gate.gate_id)),
    )
    .await?;
    if stay.space_id.is_some() {
        shared::exited(tx, stay.id, ev.captured_at, now).await?;
    }
    if stay.anomaly.as_deref() == Some(sessions::CLOSED_AT_REFUSED_EXIT) {
        // It left now: no later read is this stay's.
        sessions::mark_anomaly(&mut *tx, stay.id, "offline_reconstructed").await?;
    }
    let paid = Money::total(stay.paid).map_err(|e| ApiError::Internal(e.into()))?;
    let owed = fee.saturating_sub(paid);
    if !owed.is_zero() {
        let detail = format!(
            "left at {} while the lane was not deciding; ¥{owed} unpaid",
            ev.captured_at
        );
        anomaly(
            tx,
            gate,
            Some(stay.id),
            "offline_reconstructed",
            &ev.plate,
            detail,
        )
        .await?;
    }
    recorded(tx, gate, ev, Some(stay.id), owed, Some(&priced), fx).await
}

/// An exit with no stay to end: a closed stay without an entry, billed nothing until its
/// entry arrives, listed for staff.
async fn entryless(
    tx: &mut PgConnection,
    gate: &GateContext,
    ev: &Event,
    fx: &mut Effects,
) -> Result<GateDecision, Failure> {
    let session_id = record::new_id();
    let began = Began::AtExit {
        kind: SessionKind::Visitor,
        origin: Origin::OfflineExit,
        tariff_version_id: None,
    };
    let bill = Bill::flat(LineCode::NoEntryFee, Money::ZERO, "入场记录待补");
    let stay = new_stay(session_id, gate, ev, &began);
    sessions::insert_closed_session(tx, &stay, &bill, (ev.captured_at, gate.gate_id)).await?;
    let detail = format!(
        "exit captured at {} with no entry recorded yet",
        ev.captured_at
    );
    anomaly(
        tx,
        gate,
        Some(session_id),
        "exit_without_entry",
        &ev.plate,
        detail,
    )
    .await?;
    recorded(tx, gate, ev, Some(session_id), Money::ZERO, None, fx).await
}
