//! Turning money received into journal transactions: a payment is split by the space the stay
//! used and the compound's revenue policy in force when it was paid; money we cannot credit
//! (paid after its intent expired, or a different amount) is owed back to the driver.

use chrono::{DateTime, Utc};
use parkshare_domain::money::Money;
use parkshare_ledger::split::refund_entry;
use parkshare_ledger::{payment_entry, AccountKind, Entry, Parties, Posting, Source, SpaceUse};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::ledger::{self, NewTransaction};
use crate::store::payments::{BookingParties, SessionParties};

fn space_use(parties: &SessionParties) -> Result<SpaceUse, ApiError> {
    Ok(
        match (parties.space_kind.as_deref(), parties.space_owner_id) {
            (None, _) => SpaceUse::VisitorPool,
            (Some("owned"), Some(owner_id)) => SpaceUse::SharedPrivate { owner_id },
            (Some("common"), _) => SpaceUse::Common,
            (Some("developer_unsold"), _) => SpaceUse::DeveloperUnsold,
            (Some(other), _) => return Err(ApiError::internal(format!("space kind {other}"))),
        },
    )
}

/// Posts the payment `payment_id` of `amount` by `who` under `idempotency_key`; the caller
/// records the payment after, naming the transaction returned. `None` if the key was already
/// posted (a retried request that raced this one): the caller rolls back and answers with the
/// first.
pub async fn credit_payment(
    tx: &mut PgConnection,
    who: &SessionParties,
    idempotency_key: &str,
    payment_id: Uuid,
    amount: Money,
    source: Source,
    paid_at: DateTime<Utc>,
) -> Result<Option<Uuid>, ApiError> {
    let space = space_use(who)?;
    let policy = ledger::policy_or_default(who.policy.as_ref());
    let parties = Parties {
        tenant_id: who.tenant_id,
        compound_id: who.compound_id,
    };
    let entry =
        payment_entry(amount, source, space, &policy, parties).map_err(ApiError::internal)?;
    let memo = format!("停车费 {}", who.plate);
    let t = NewTransaction {
        tenant_id: who.tenant_id,
        idempotency_key,
        kind: "payment",
        session_id: Some(who.session_id),
        payment_id: Some(payment_id),
        booking_id: None,
        rental_id: None,
        compound_id: Some(who.compound_id),
        memo: &memo,
    };
    let (transaction_id, created) = ledger::post(&mut *tx, &t, &entry).await?;
    if !created {
        return Ok(None);
    }
    if let SpaceUse::SharedPrivate { owner_id } = space {
        // The owner hears of what their space earned (`payout`), from the same transaction.
        let credited = credited_to_owner(&entry);
        let data = serde_json::json!({
            "session_id": who.session_id, "plate": who.plate, "paid": amount.to_string(),
            "credited": credited, "transaction_id": transaction_id, "paid_at": paid_at,
        });
        crate::webhooks::to_owner(tx, who.tenant_id, owner_id, "payout", data, paid_at).await?;
    }
    Ok(Some(transaction_id))
}

/// Money a provider collected that no intent can take (late, or not the amount asked): it
/// sits in the firm's clearing account and is owed back to the driver. Idempotent per
/// provider notification.
pub async fn record_unmatched_receipt(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    (session_id, booking_id, rental_id): (Option<Uuid>, Option<Uuid>, Option<Uuid>),
    notification_id: &str,
    amount: Money,
    why: &str,
) -> Result<(), ApiError> {
    let parties = Parties {
        tenant_id,
        compound_id: Uuid::nil(),
    };
    let entry = Entry::new([
        Posting {
            account: parties.source(Source::Provider),
            amount: amount.yuan(),
        },
        Posting {
            account: parties.account(AccountKind::RefundsPayable),
            amount: -amount.yuan(),
        },
    ])
    .map_err(ApiError::internal)?;
    let key = format!("receipt:{notification_id}");
    let t = NewTransaction {
        tenant_id,
        idempotency_key: &key,
        kind: "unmatched_receipt",
        session_id,
        payment_id: None,
        booking_id,
        rental_id,
        compound_id: None,
        memo: why,
    };
    ledger::post(&mut *tx, &t, &entry).await?;
    Ok(())
}

/// Posts the payment of a booking's price, paid through a provider before the stay: split like
/// a payment for a stay on that owner's space (the owner is credited less the platform fee),
/// under the intent's key, so it is posted at most once. The transaction names the booking; when
/// the car arrives the stay counts it as paid without posting again. `None` if the key was
/// already posted. The owner's `payout` event occurred at `paid_at`.
pub async fn credit_booking_payment(
    tx: &mut PgConnection,
    who: &BookingParties,
    booking_id: Uuid,
    intent_id: Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
) -> Result<Option<Uuid>, ApiError> {
    let policy = ledger::policy_or_default(who.policy.as_ref());
    let parties = Parties {
        tenant_id: who.tenant_id,
        compound_id: who.compound_id,
    };
    let space = SpaceUse::SharedPrivate {
        owner_id: who.owner_id,
    };
    let entry = payment_entry(amount, Source::Provider, space, &policy, parties)
        .map_err(ApiError::internal)?;
    let memo = format!("预约车位 {}", who.plate);
    let key = format!("intent:{intent_id}");
    let t = NewTransaction {
        tenant_id: who.tenant_id,
        idempotency_key: &key,
        kind: "payment",
        session_id: None,
        payment_id: Some(intent_id),
        booking_id: Some(booking_id),
        rental_id: None,
        compound_id: Some(who.compound_id),
        memo: &memo,
    };
    let (transaction_id, created) = ledger::post(&mut *tx, &t, &entry).await?;
    if !created {
        return Ok(None);
    }
    // The owner hears what their space earned, as for a paid stay.
    let credited: rust_decimal::Decimal = entry
        .postings()
        .iter()
        .filter(|p| p.account.kind == AccountKind::OwnerPayable)
        .map(|p| -p.amount)
        .sum();
    let data = serde_json::json!({
        "booking_id": booking_id, "plate": who.plate, "paid": amount.to_string(),
        "credited": credited, "transaction_id": transaction_id,
    });
    crate::webhooks::to_owner(tx, who.tenant_id, who.owner_id, "payout", data, paid_at).await?;
    Ok(Some(transaction_id))
}

/// Gives back `amount` of a booking's payment by a reversing transaction (every account the
/// payment credited gives back its share), `already` having been given back before. Posted once
/// per booking and `reason`.
pub async fn refund_booking_payment(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    booking_id: Uuid,
    payment_transaction_id: Uuid,
    already: Money,
    amount: Money,
    reason: &str,
) -> Result<(), ApiError> {
    let paid = Entry::new(ledger::entry_of(&mut *tx, payment_transaction_id).await?)
        .map_err(ApiError::internal)?;
    let parties = Parties {
        tenant_id,
        compound_id: Uuid::nil(),
    };
    let entry = refund_entry(&paid, parties.source(Source::Provider), already, amount)
        .map_err(ApiError::internal)?;
    let key = format!("booking-refund:{booking_id}:{reason}");
    let t = NewTransaction {
        tenant_id,
        idempotency_key: &key,
        kind: "refund",
        session_id: None,
        payment_id: None,
        booking_id: Some(booking_id),
        rental_id: None,
        compound_id: None,
        memo: reason,
    };
    ledger::post(&mut *tx, &t, &entry).await?;
    Ok(())
}

/// Money received for a rental's term: how much, which way, and when.
pub struct Received {
    pub amount: Money,
    pub source: Source,
    pub paid_at: DateTime<Utc>,
}

/// Who a rental's payment credits, as the rental's row gives it
/// (`allocation::rentals::store::parties`).
pub struct RentalPayee<'a> {
    pub tenant_id: Uuid,
    pub compound_id: Uuid,
    /// `pool`, `common`, `developer_unsold` or `owned`.
    pub space_kind: &'a str,
    pub space_owner_id: Option<Uuid>,
    /// The renter's plate (in the owner's `payout` notice).
    pub plate: &'a str,
    /// The compound's revenue policy in force when it was paid; the default if none.
    pub policy: Option<&'a sqlx::types::Json<parkshare_ledger::RevenuePolicy>>,
}

/// Posts the payment of a rental's term, split by the kind of space rented like a stay on it:
/// a pool pass as the visitor pool, a common-area space to common revenue less the firm's
/// share, a developer-unsold space to the developer (or the franchise holder), an owner's
/// space to its owner less the platform fee (who hears of it, `payout`). `None` if `key` was
/// posted already.
pub async fn credit_rental_payment(
    tx: &mut PgConnection,
    who: &RentalPayee<'_>,
    rental_id: Uuid,
    key: &str,
    received: Received,
    memo: &str,
) -> Result<Option<Uuid>, ApiError> {
    let Received {
        amount,
        source,
        paid_at,
    } = received;
    let space = match (who.space_kind, who.space_owner_id) {
        ("pool", _) => SpaceUse::VisitorPool,
        ("common", _) => SpaceUse::Common,
        ("developer_unsold", _) => SpaceUse::DeveloperUnsold,
        ("owned", Some(owner_id)) => SpaceUse::SharedPrivate { owner_id },
        (other, _) => return Err(ApiError::internal(format!("rented space kind {other}"))),
    };
    let policy = ledger::policy_or_default(who.policy);
    let parties = Parties {
        tenant_id: who.tenant_id,
        compound_id: who.compound_id,
    };
    let entry =
        payment_entry(amount, source, space, &policy, parties).map_err(ApiError::internal)?;
    let t = NewTransaction {
        tenant_id: who.tenant_id,
        idempotency_key: key,
        kind: "payment",
        session_id: None,
        payment_id: None,
        booking_id: None,
        rental_id: Some(rental_id),
        compound_id: Some(who.compound_id),
        memo,
    };
    let (transaction_id, created) = ledger::post(&mut *tx, &t, &entry).await?;
    if !created {
        return Ok(None);
    }
    if let SpaceUse::SharedPrivate { owner_id } = space {
        let credited = credited_to_owner(&entry);
        let data = serde_json::json!({
            "rental_id": rental_id, "plate": who.plate, "paid": amount.to_string(),
            "credited": credited, "transaction_id": transaction_id,
        });
        crate::webhooks::to_owner(tx, who.tenant_id, owner_id, "payout", data, paid_at).await?;
    }
    Ok(Some(transaction_id))
}

/// What a payment's entry credits the space's owner: its `owner_payable` postings (credits are
/// negative there), told to the owner in the `payout` webhook.
fn credited_to_owner(entry: &Entry) -> rust_decimal::Decimal {
    entry
        .postings()
        .iter()
        .filter(|p| p.account.kind == AccountKind::OwnerPayable)
        .map(|p| -p.amount)
        .sum()
}
