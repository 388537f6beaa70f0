//! Developer spaces left unsold: staff record since when each is offered for sale and how it is
//! offered now; the compliance list names those offered for sale only for more than two years
//! (`parkshare_allocation::unsold`), and those whose date nobody recorded.

use crate::error::ErrorCode;
use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use parkshare_allocation::unsold::{self, Offered};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::registry;

/// The earliest date a space can plausibly have been offered for sale since.
const EARLIEST_FOR_SALE: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(put_offer).service(compliance);
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct UnsoldRow {
    space_id: Uuid,
    lot_id: Uuid,
    lot_name: String,
    code: String,
    for_sale_since: Option<NaiveDate>,
    offered_as: String,
}

/// A developer-unsold space with where it stands on `today`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct UnsoldSpace {
    space_id: Uuid,
    lot_id: Uuid,
    lot_name: String,
    code: String,
    for_sale_since: Option<NaiveDate>,
    offered_as: Offered,
    #[serde(flatten)]
    standing: unsold::Standing,
    complies: bool,
    /// Why it breaks the rule; none when it complies.
    reason: Option<String>,
}

/// The compound's developer-unsold spaces against the two-year rule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Compliance {
    compound_id: Uuid,
    /// The compound's local date the standings are for.
    as_of: NaiveDate,
    /// How many of `spaces` break the rule.
    breaking_the_rule: usize,
    spaces: Vec<UnsoldSpace>,
}

impl UnsoldRow {
    fn on(self, today: NaiveDate) -> Result<UnsoldSpace, ApiError> {
        let offered = Offered::parse(&self.offered_as)
            .ok_or_else(|| ApiError::internal(format!("offered_as {}", self.offered_as)))?;
        let standing = unsold::standing(self.for_sale_since, offered, today);
        Ok(UnsoldSpace {
            space_id: self.space_id,
            lot_id: self.lot_id,
            lot_name: self.lot_name,
            code: self.code,
            for_sale_since: self.for_sale_since,
            offered_as: offered,
            standing,
            complies: standing.complies(),
            reason: standing.reason(),
        })
    }
}

const UNSOLD_COLUMNS: &str = "s.id as space_id, s.lot_id, l.name as lot_name, s.code,
    s.for_sale_since, s.offered_as";

async fn unsold_spaces(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<UnsoldRow>> {
    sqlx::query_as(&format!(
        "select {UNSOLD_COLUMNS} from spaces s join lots l on l.id = s.lot_id
          where s.tenant_id = $1 and l.compound_id = $2 and s.kind = 'developer_unsold'
          order by l.name, s.code"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

/// The compound's local date at `now` (the service's clock).
fn today_in(compound: &registry::Compound, now: DateTime<Utc>) -> Result<NaiveDate, ApiError> {
    Ok(now.with_timezone(&compound.zone()?).date_naive())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    /// `sale`, `rent_to_owners` or `metered`.
    offered_as: String,
    /// The compound's local date since which the space is offered for sale; kept if absent.
    for_sale_since: Option<NaiveDate>,
}

/// Record how a developer-unsold space is offered, and since when it is for sale.
#[utoipa::path(tag = "staff", operation_id = "put_offer", security(("staff_token" = [])), request_body = OfferBody, responses((status = 200, description = "Done", body = UnsoldSpace)))]
#[put("/spaces/{id}/unsold-offer")]
async fn put_offer(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<OfferBody>,
) -> Result<HttpResponse, ApiError> {
    let offered = Offered::parse(&body.offered_as).ok_or_else(|| {
        ApiError::invalid(
            ErrorCode::InvalidOffer,
            "offered_as must be 'sale', 'rent_to_owners' or 'metered'",
        )
    })?;
    let space = registry::space(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    if space.kind != "developer_unsold" {
        return Err(ApiError::invalid(
            ErrorCode::NotDeveloperUnsold,
            format!(
                "space {} is {}: only a developer-unsold space is offered this way",
                space.code, space.kind
            ),
        ));
    }
    let lot = registry::lot(&state.db, staff.tenant_id, space.lot_id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    let compound = registry::compound(&state.db, staff.tenant_id, lot.compound_id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    let today = today_in(&compound, state.clock.now())?;
    if body
        .for_sale_since
        .is_some_and(|since| since < EARLIEST_FOR_SALE)
    {
        return Err(ApiError::invalid(
            ErrorCode::ImplausibleForSaleSince,
            format!("for_sale_since is before {EARLIEST_FOR_SALE}: check the date"),
        ));
    }
    if body.for_sale_since.is_some_and(|since| since > today) {
        return Err(ApiError::invalid(
            ErrorCode::ForSaleSinceInFuture,
            format!("for_sale_since is after today ({today}) in the compound"),
        ));
    }
    let mut tx = state.db.begin().await?;
    if offered == Offered::Metered {
        let now = state.clock.now();
        // The compound's announcement lock first, then the space's row: the order a rental
        // application takes them in, so the two never wait on each other in a circle.
        // A space being allotted by lottery stays allottable until that lottery is over.
        if let Some(lottery) = crate::allocation::allotment::running_lottery_of(
            &mut tx,
            compound.id,
            space.id,
            state.clock.now(),
        )
        .await?
        {
            return Err(ApiError::conflict(
                ErrorCode::SpaceInLottery,
                format!(
                    "space {} is allotted by lottery {lottery}, still running or taken through \
                     it: it is not run as metered parking",
                    space.code
                ),
            ));
        }
        refuse_metered_while_rented(&mut tx, staff.tenant_id, (space.id, &space.code), now).await?;
    }
    // A recorded date may be corrected earlier, never later: moving it later would restart the
    // two years of a space that is overdue. Checked in the update itself, so that two
    // corrections at once cannot slip past it.
    let row: Option<UnsoldRow> = sqlx::query_as(&format!(
        "with updated as (
             update spaces set offered_as = $3, for_sale_since = coalesce($4, for_sale_since)
              where tenant_id = $1 and id = $2
                and ($4::date is null or for_sale_since is null or $4 <= for_sale_since)
             returning *)
         select {UNSOLD_COLUMNS} from updated s join lots l on l.id = s.lot_id"
    ))
    .bind(staff.tenant_id)
    .bind(space.id)
    .bind(offered.as_str())
    .bind(body.for_sale_since)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some(row) = row else {
        return Err(ApiError::invalid(
            ErrorCode::ForSaleSinceMovedLater,
            "for_sale_since may be corrected to an earlier date only: a later one would restart \
             the two years",
        ));
    };
    tracing::info!(space = %space.id, offered_as = offered.as_str(), by = %staff.label, "unsold space offer recorded");
    Ok(HttpResponse::Ok().json(row.on(today)?))
}

/// Refuses to run the space as metered parking while a term holds it: paid with days from the
/// compound's today on, or held for its payment with the hold running (the same rule that
/// keeps a rented space out of a lottery). The space's row is locked first, as a rental
/// application locks it before it checks that the space is not metered, so a switch and an
/// application are decided one after the other: whichever comes second sees the first.
async fn refuse_metered_while_rented(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    (space_id, code): (Uuid, &str),
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    use crate::allocation::rentals::store;
    store::space_for_update(&mut *tx, tenant_id, space_id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    if store::rented_from_today(&mut *tx, &[space_id], now)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            ErrorCode::SpaceRented,
            format!(
                "space {code} is rented (or held for an application) from today or later: it \
                 is run as metered parking only once its terms are over"
            ),
        ));
    }
    Ok(())
}

/// Every developer-unsold space of the compound with where it stands against the two-year
/// rule today, and how many break it.
#[utoipa::path(tag = "staff", operation_id = "unsold_spaces", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Compliance)))]
#[get("/compounds/{id}/unsold-spaces")]
async fn compliance(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = registry::compound(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    let today = today_in(&compound, state.clock.now())?;
    let spaces = unsold_spaces(&state.db, staff.tenant_id, compound.id)
        .await?
        .into_iter()
        .map(|row| row.on(today))
        .collect::<Result<Vec<_>, _>>()?;
    let breaking = spaces.iter().filter(|s| !s.complies).count();
    Ok(HttpResponse::Ok().json(Compliance {
        compound_id: compound.id,
        as_of: today,
        breaking_the_rule: breaking,
        spaces,
    }))
}
