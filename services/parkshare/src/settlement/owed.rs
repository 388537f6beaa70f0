//! Money owed back to drivers (`refunds_payable`): a second charge, an overpayment, a late or
//! mismatched payment. Staff list what is owed and record each payout once it is made —
//! through the provider (from `provider_clearing`) or in cash at the compound's booth (from
//! its `cash_on_hand`) — so the liability is settled in the ledger, not only outside it.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use parkshare_domain::money::Money;
use parkshare_ledger::{AccountKind, Entry, Parties, Posting, Source};
use serde::Deserialize;
use uuid::Uuid;

use super::store::owed::{self, Owed};
use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::ledger::{self, NewTransaction};

/// The most receipts one page answers (and the default).
const LIST_MAX: i64 = 500;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(pay_back);
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `owed` (default), `paid_back` or `all`.
    status: Option<String>,
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// Receipts per page, 1 to [`LIST_MAX`] (the default).
    limit: Option<i64>,
}

/// What the firm owes back to drivers, oldest first.
#[utoipa::path(tag = "staff", operation_id = "list_refunds_owed", params(ListQuery), security(("staff_token" = [])), responses((status = 200, description = "Done", body = super::views::Paged<Owed>)))]
#[get("/refunds-owed")]
async fn list(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let paid_back = match query.status.as_deref().unwrap_or("owed") {
        "owed" => Some(false),
        "paid_back" => Some(true),
        "all" => None,
        _ => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidStatus,
                "status must be owed, paid_back or all",
            ))
        }
    };
    let page = super::views::Page::of(query.limit, query.cursor.as_deref(), LIST_MAX)?;
    let items = owed::list(
        &state.db,
        staff.tenant_id,
        paid_back,
        page.after,
        page.limit + 1,
    )
    .await?;
    // While `truncated`, ask again with `cursor=<next_cursor>`.
    Ok(HttpResponse::Ok().json(page.answer(items, |owed| (owed.received_at, owed.id))))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Method {
    /// Refunded through the payment provider.
    Provider,
    /// Handed back in cash at the compound's booth.
    Cash,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PayoutBody {
    method: Method,
    /// The provider's refund id, or the booth's receipt number.
    reference: String,
}

/// Records that a receipt owed back was paid back; once per receipt. Sent again as it was, it
/// answers the payout recorded; another method or reference is 409.
#[utoipa::path(tag = "staff", operation_id = "pay_back", security(("staff_token" = [])), request_body = PayoutBody, responses((status = 201, description = "Created", body = Owed), (status = 200, description = "Sent again as it was: the payout recorded", body = Owed)))]
#[post("/refunds-owed/{id}/payouts")]
async fn pay_back(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<PayoutBody>,
) -> Result<HttpResponse, ApiError> {
    let reference = crate::validate::text("reference", &body.reference, 200)?;
    let receipt = owed::one(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("owed refund"))?;
    if receipt.payout_transaction_id.is_some() {
        return replay(receipt, body.method, &reference);
    }
    let source = match (body.method, receipt.compound_id) {
        (Method::Provider, _) => Source::Provider,
        (Method::Cash, Some(_)) => Source::Cash,
        (Method::Cash, None) => {
            return Err(ApiError::invalid(
                ErrorCode::NoCompound,
                "this receipt names no compound whose booth could pay it; pay it back through \
                 the provider",
            ))
        }
    };
    let amount = Money::total(receipt.amount).map_err(ApiError::internal)?;
    let mut tx = state.db.begin().await?;
    // One provider refund or booth receipt pays back one receipt: a reference already used
    // for another (a staff typo) would mark a second debt as paid. Checked under a lock on
    // the reference, so two payouts racing with one reference cannot both pass.
    if let Some(other) = owed::payout_with_reference(&mut tx, staff.tenant_id, &reference).await? {
        return Err(ApiError::conflict(
            ErrorCode::ReferenceAlreadyUsed,
            format!("reference {reference} already records the payout of owed refund {other}"),
        ));
    }
    // The payout debits the very account the receipt credited.
    let owed_account = ledger::entry_of(&mut *tx, receipt.id)
        .await?
        .into_iter()
        .find(|p| p.account.kind == AccountKind::RefundsPayable)
        .ok_or_else(|| ApiError::internal("a receipt without refunds_payable"))?
        .account;
    let parties = Parties {
        tenant_id: staff.tenant_id,
        compound_id: receipt.compound_id.unwrap_or_default(),
    };
    let entry = Entry::new([
        Posting {
            account: owed_account,
            amount: amount.yuan(),
        },
        Posting {
            account: parties.source(source),
            amount: -amount.yuan(),
        },
    ])
    .map_err(ApiError::internal)?;
    let key = owed::payout_key(receipt.id);
    let t = NewTransaction {
        tenant_id: staff.tenant_id,
        idempotency_key: &key,
        kind: "refund_payout",
        session_id: receipt.session_id,
        payment_id: None,
        booking_id: receipt.booking_id,
        rental_id: receipt.rental_id,
        compound_id: receipt.compound_id,
        memo: &reference,
    };
    let (_, created) = ledger::post(&mut tx, &t, &entry).await?;
    if created {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    let paid = owed::one(&state.db, staff.tenant_id, receipt.id)
        .await?
        .ok_or_else(|| ApiError::internal("owed refund vanished"))?;
    if created {
        Ok(HttpResponse::Created().json(paid))
    } else {
        // Another request paid it back meanwhile.
        replay(paid, body.method, &reference)
    }
}

fn replay(paid: Owed, method: Method, reference: &str) -> Result<HttpResponse, ApiError> {
    let from = match method {
        Method::Provider => AccountKind::ProviderClearing,
        Method::Cash => AccountKind::CashOnHand,
    };
    if paid.paid_back_from.as_deref() == Some(from.code())
        && paid.paid_back_reference.as_deref() == Some(reference)
    {
        Ok(HttpResponse::Ok().json(paid))
    } else {
        Err(ApiError::conflict(
            ErrorCode::AlreadyPaidBack,
            "this receipt was already paid back, by another method or reference",
        ))
    }
}
