//! Rentals (月租): a monthly pass for a lot's pool, or the rent of one space (common-area,
//! developer-unsold, or an owner's space let long-term through the property office), for
//! whole months at the lot's filed monthly price (pure rules in
//! `parkshare_allocation::rental`). Applied for by an owner or entered by staff; held unpaid
//! for [`HOLD_MIN`] with a payment intent, paid through the provider or in cash at the booth;
//! credited by the kind of space in the ledger. The gate admits a paid-up renter's car as it
//! admits a permit holder (`store::registry::plate_facts`), through the term and its grace.
//!
//! - [`store`]: the SQL;
//! - [`letting`]: an owner's consent to let their own space by the month;
//! - [`waiting`]: the owners-first waiting list, and who may rent while owners wait;
//! - [`term`]: renewals, reminders, early ends.
//!
//! The rules in words: docs/rentals.md.

pub mod letting;
pub mod store;
pub mod term;
pub mod waiting;

use actix_web::{get, post, web, HttpResponse};
use chrono::TimeZone;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use parkshare_allocation::rental::{self, Applicant, Term};
use parkshare_domain::money::Money;
use parkshare_domain::plate::Plate;
use parkshare_domain::vehicle::VehicleClass;
use parkshare_ledger::Source;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{Owner, Staff};
use crate::error::{is_unique_violation, ApiError, ErrorCode};
use crate::settlement::posting;
use crate::state::AppState;
use crate::store::payments::{self, Intent, NewIntent, Pays};
use store::{NewRental, Rental};

/// How long an unpaid application holds its space (and its intent can be paid): as long as
/// a stay's payment intent, long enough to pay on a phone.
pub const HOLD_MIN: i64 = 15;
/// How far ahead a term may start: a rental is for now, not a reservation for next year.
pub const START_AHEAD_DAYS_MAX: i64 = 90;
/// Most terms one list answers.
const LIST_MAX: i64 = 500;

/// The rental settings: with the other settings, as `AppState` holds them.
pub use crate::settings::RentalSettings;

/// Under `/v1/admin`.
pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(staff_apply)
        .service(staff_list)
        .service(staff_show)
        .service(term::record_cash)
        .service(term::staff_renew)
        .service(term::end_early);
    waiting::admin_routes(cfg);
}

/// Under `/v1/owner`.
pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(owner_apply)
        .service(owner_list)
        .service(term::owner_renew);
    waiting::owner_routes(cfg);
    letting::owner_routes(cfg);
}

/// What is rented: a lot's pool, or one space.
#[derive(Debug, Clone, Copy)]
enum Target {
    Pool(Uuid),
    Space(Uuid),
}

fn target(lot_id: Option<Uuid>, space_id: Option<Uuid>) -> Result<Target, ApiError> {
    match (lot_id, space_id) {
        (Some(lot), None) => Ok(Target::Pool(lot)),
        (None, Some(space)) => Ok(Target::Space(space)),
        _ => Err(ApiError::invalid(
            ErrorCode::InvalidTarget,
            "name exactly one of lot_id (a pass for the lot's pool) or space_id (one space)",
        )),
    }
}

/// `word` with its indefinite article: "an ended", "a paid".
pub(crate) fn with_article(word: &str) -> String {
    match word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {word}"),
        false => format!("a {word}"),
    }
}

/// Where a rental would be, resolved and (for a space) locked.
struct Place {
    compound_id: Uuid,
    lot_id: Uuid,
    space_id: Option<Uuid>,
    space_kind: String,
    space_owner_id: Option<Uuid>,
}

/// Who applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppliedBy {
    Owner,
    Staff,
    /// A lottery winner accepting their offer.
    Lottery,
}

impl AppliedBy {
    fn as_str(self) -> &'static str {
        match self {
            AppliedBy::Owner => "owner",
            AppliedBy::Staff => "staff",
            AppliedBy::Lottery => "lottery",
        }
    }
}

async fn place_of(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    target: Target,
    applied_by: AppliedBy,
) -> Result<Place, ApiError> {
    match target {
        Target::Pool(lot_id) => {
            let (compound_id, _) = store::lot_place(&mut *tx, tenant_id, lot_id)
                .await?
                .ok_or(ApiError::NotFound("lot"))?;
            Ok(Place {
                compound_id,
                lot_id,
                space_id: None,
                space_kind: "pool".into(),
                space_owner_id: None,
            })
        }
        Target::Space(space_id) => {
            let space = store::space_for_update(&mut *tx, tenant_id, space_id)
                .await?
                .ok_or(ApiError::NotFound("space"))?;
            if space.kind == "developer_unsold" && space.offered_as == "metered" {
                return Err(ApiError::conflict(
                    ErrorCode::SpaceMetered,
                    "this developer space is run as metered visitor parking, not rented",
                ));
            }
            if space.kind == "owned" && applied_by == AppliedBy::Owner {
                return Err(ApiError::invalid(
                    ErrorCode::OwnedSpaceThroughStaff,
                    "an owner's space is let through the property office, which holds the \
                     owner's letting agreement",
                ));
            }
            if space.kind == "owned" {
                letting::require_consent(&mut *tx, space.id).await?;
            }
            Ok(Place {
                compound_id: space.compound_id,
                lot_id: space.lot_id,
                space_id: Some(space.id),
                space_kind: space.kind,
                space_owner_id: space.owner_id,
            })
        }
    }
}

/// The renter of an application.
enum Renter {
    /// An owner of the compound, renting for a vehicle registered to them.
    Owner(Uuid),
    /// Anyone else, named, with the vehicle's class.
    NonOwner {
        name: String,
        phone: Option<String>,
        class: VehicleClass,
    },
}

/// The class of the vehicle rented for, checked against the registry: an owner's must be
/// registered to them; a non-owner's plate must not be an owner's (staff should name the owner).
async fn vehicle_class(
    tx: &mut PgConnection,
    compound_id: Uuid,
    plate: &Plate,
    renter: &Renter,
) -> Result<VehicleClass, ApiError> {
    let registered = store::vehicle_of(&mut *tx, compound_id, plate.as_str()).await?;
    match (renter, registered) {
        (Renter::Owner(owner_id), Some((holder, class))) if holder == *owner_id => {
            VehicleClass::parse(&class)
                .ok_or_else(|| ApiError::internal(format!("vehicle class {class}")))
        }
        (Renter::Owner(_), _) => Err(ApiError::invalid(
            ErrorCode::NotYourVehicle,
            format!("{plate} is not a vehicle registered to this owner; register it first"),
        )),
        (Renter::NonOwner { .. }, Some(_)) => Err(ApiError::invalid(
            ErrorCode::PlateOfAnOwner,
            format!("{plate} is registered to an owner of the compound: rent it for that owner"),
        )),
        (Renter::NonOwner { class, .. }, None) => Ok(*class),
    }
}

/// A term's price at the lot's filed tariff: `(monthly, discount %, price)`.
pub(crate) struct Priced {
    pub monthly: Money,
    pub discount_pct: Decimal,
    pub price: Money,
    pub filing_no: String,
}

pub(crate) async fn price_term(
    tx: &mut PgConnection,
    lot_id: Uuid,
    class: VehicleClass,
    owner: bool,
    months: u32,
    (first_day_start, now): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Priced, ApiError> {
    // The version in force when the term begins (a term spanning a later filing keeps the
    // price it was sold at); for a term beginning today on a lot first filed since midnight,
    // the version in force now.
    let filed =
        match crate::store::tariffs::filed_in_force(&mut *tx, lot_id, first_day_start).await? {
            None if first_day_start < now => {
                crate::store::tariffs::filed_in_force(&mut *tx, lot_id, now).await?
            }
            filed => filed,
        };
    let filed = filed.ok_or_else(|| {
        ApiError::conflict(
            ErrorCode::NoFiledTariff,
            "the lot has no filed tariff: a rental is charged only at a filed monthly price",
        )
    })?;
    let monthly = filed
        .tariff
        .monthly_price(class)
        .filter(|m| !m.is_zero())
        .ok_or_else(|| {
            ApiError::conflict(
                ErrorCode::NoMonthlyPrice,
                format!(
                    "the lot's filed tariff {} has no monthly price for {} vehicles",
                    filed.filing_no,
                    class.as_str()
                ),
            )
        })?;
    let discount_pct = if owner {
        filed.tariff.owner_discount_pct
    } else {
        Decimal::ZERO
    };
    let price = rental::price(monthly, months, Some(discount_pct));
    if price.is_zero() {
        // A 100 % owner discount: nothing to sell; staff grant the owner a permit instead.
        return Err(ApiError::conflict(
            ErrorCode::NothingToCharge,
            "the filed tariff's owner discount makes this rental free: staff grant a permit",
        ));
    }
    Ok(Priced {
        monthly,
        discount_pct,
        price,
        filing_no: filed.filing_no.clone(),
    })
}

/// The instant the local day `day` begins in the compound's zone: when a term that begins on
/// it begins, and so the instant its price is taken at.
pub(crate) async fn first_day_start(
    tx: &mut PgConnection,
    compound_id: Uuid,
    day: NaiveDate,
) -> Result<DateTime<Utc>, ApiError> {
    let zone: Tz = store::compound_zone(&mut *tx, compound_id)
        .await?
        .parse()
        .map_err(|_| ApiError::internal("a compound's time zone does not parse"))?;
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    // A zone whose clocks skip midnight (a daylight-saving change) begins the day an hour on.
    zone.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map(|start| start.with_timezone(&Utc))
        .ok_or_else(|| ApiError::internal(format!("{day} has no start in {zone}")))
}

/// The compound's local today.
pub(crate) async fn today_in(
    tx: &mut PgConnection,
    compound_id: Uuid,
    now: DateTime<Utc>,
) -> Result<NaiveDate, ApiError> {
    let zone: Tz = store::compound_zone(&mut *tx, compound_id)
        .await?
        .parse()
        .map_err(|_| ApiError::internal("a compound's time zone does not parse"))?;
    Ok(now.with_timezone(&zone).date_naive())
}

fn term_of(starts_on: NaiveDate, months: u32, today: NaiveDate) -> Result<Term, ApiError> {
    if starts_on < today {
        return Err(ApiError::invalid(
            ErrorCode::StartInPast,
            "a rental starts today or later",
        ));
    }
    if starts_on > today + Duration::days(START_AHEAD_DAYS_MAX) {
        return Err(ApiError::invalid(
            ErrorCode::StartTooFar,
            format!("a rental starts within {START_AHEAD_DAYS_MAX} days"),
        ));
    }
    Term::of_months(starts_on, months)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidMonths, e.to_string()))
}

/// An application as the routes read it.
struct Application {
    target: Target,
    plate: Plate,
    months: u32,
    starts_on: Option<NaiveDate>,
    renter: Renter,
    applied_by: AppliedBy,
}

/// Decides an application in one transaction: where, for which car, at what price, whether
/// owners first allows it; then holds the space with an unpaid term and its payment intent.
async fn apply(
    state: &AppState,
    tenant_id: Uuid,
    a: Application,
    owner_compound: Option<Uuid>,
) -> Result<(Rental, Intent), ApiError> {
    let mut tx = state.db.begin().await?;
    let held = apply_in(&mut tx, state, tenant_id, a, owner_compound).await?;
    tx.commit().await?;
    Ok(held)
}

/// [`apply`] within the caller's transaction.
async fn apply_in(
    tx: &mut PgConnection,
    state: &AppState,
    tenant_id: Uuid,
    a: Application,
    owner_compound: Option<Uuid>,
) -> Result<(Rental, Intent), ApiError> {
    let now = state.clock.now();
    // Locks in one order everywhere: the compound's lottery announcements, then the space's
    // row (announcing a lottery and running a space as metered parking take them so too).
    if let Target::Space(space_id) = a.target {
        if let Some(compound_id) = store::compound_of_space(&mut *tx, tenant_id, space_id).await? {
            crate::allocation::allotment::lock_compound(&mut *tx, compound_id).await?;
        }
    }
    let place = place_of(&mut *tx, tenant_id, a.target, a.applied_by).await?;
    if owner_compound.is_some_and(|c| c != place.compound_id) {
        // An owner sees only their own compound.
        return Err(ApiError::NotFound(match a.target {
            Target::Pool(_) => "lot",
            Target::Space(_) => "space",
        }));
    }
    if let Renter::Owner(owner_id) = a.renter {
        if place.space_owner_id == Some(owner_id) {
            return Err(ApiError::invalid(
                ErrorCode::OwnSpace,
                "the owner of this space does not rent it",
            ));
        }
    }
    // A space a lottery is allotting goes to owners through its draw and offers, not past them:
    // only to a winner who accepted without a car yet (rented by them or by the office for
    // them), and then the rental is the one their offer became.
    let mut won_in = None;
    // Under the compound's announcement lock, taken above and held until commit: a lottery
    // announced at the same moment either sees this rental or is seen by it (issue 26's
    // tester, F5).
    if let (Some(space_id), true) = (place.space_id, a.applied_by != AppliedBy::Lottery) {
        if let Some((_, lottery)) =
            crate::allocation::allotment::allotting(&mut *tx, place.compound_id, &[space_id], now)
                .await?
        {
            let Renter::Owner(owner_id) = a.renter else {
                return Err(crate::allocation::allotment::in_lottery(lottery));
            };
            crate::allocation::allotment::contract_winner(&mut *tx, lottery, owner_id, now).await?;
            won_in = Some((lottery, owner_id));
        }
    }
    let class = vehicle_class(&mut *tx, place.compound_id, &a.plate, &a.renter).await?;
    let today = today_in(&mut *tx, place.compound_id, now).await?;
    let term = term_of(a.starts_on.unwrap_or(today), a.months, today)?;
    let owner_id = match a.renter {
        Renter::Owner(id) => Some(id),
        Renter::NonOwner { .. } => None,
    };
    let starts_at = first_day_start(&mut *tx, place.compound_id, term.starts_on).await?;
    let priced = price_term(
        &mut *tx,
        place.lot_id,
        class,
        owner_id.is_some(),
        a.months,
        (starts_at, now),
    )
    .await?;
    // A lottery's winner was chosen among owners already: the draw is owners first.
    if a.applied_by != AppliedBy::Lottery && won_in.is_none() {
        let applicant = owner_id.map_or(Applicant::NonOwner, Applicant::Owner);
        waiting::check_owners_first(
            &mut *tx,
            place.compound_id,
            &place.space_kind,
            applicant,
            today,
        )
        .await?;
    }
    let (name, phone) = match &a.renter {
        Renter::NonOwner { name, phone, .. } => (Some(name.as_str()), phone.as_deref()),
        Renter::Owner(_) => (None, None),
    };
    let new = NewRental {
        id: Uuid::now_v7(),
        tenant_id,
        compound_id: place.compound_id,
        lot_id: place.lot_id,
        space_id: place.space_id,
        space_kind: &place.space_kind,
        plate: a.plate.as_str(),
        vehicle_class: class.as_str(),
        owner_id,
        renter_name: name,
        renter_phone: phone,
        months: i32::try_from(a.months).unwrap_or(1),
        starts_on: term.starts_on,
        ends_on: term.ends_on,
        grace_days: state.rentals.grace_days,
        monthly_price: priced.monthly.yuan(),
        discount_pct: priced.discount_pct,
        price: priced.price.yuan(),
        filing_no: &priced.filing_no,
        hold_expires_at: now + Duration::minutes(HOLD_MIN),
        renews_id: None,
        applied_by: a.applied_by.as_str(),
    };
    let held = hold(&mut *tx, &new, now).await?;
    if let Some((lottery, owner_id)) = won_in {
        // Its hold running out unpaid lapses the offer, as for a rental made at acceptance.
        crate::allocation::allotment::set_offer_rental(&mut *tx, lottery, owner_id, new.id).await?;
    }
    Ok(held)
}

/// A lottery winner who accepted their offer rents a space of the lottery at once: the first
/// of its spaces (in the order the lottery lists them) with no live term from today, held
/// unpaid with its payment intent like any application, skipping the waiting list (the draw
/// already served owners first). 409 `no_space_left` when every space is taken. Answers the
/// rental's id with the rental as answered.
pub async fn rent_won_space(
    tx: &mut PgConnection,
    state: &AppState,
    tenant_id: Uuid,
    (compound_id, owner_id): (Uuid, Uuid),
    space_ids: &[Uuid],
    plate: Plate,
    months: u32,
) -> Result<(Uuid, RentalAnswer), ApiError> {
    // The request first (the car is the household's, whole months): a bad one is told so
    // whether or not a space is free.
    vehicle_class(&mut *tx, compound_id, &plate, &Renter::Owner(owner_id)).await?;
    let today = today_in(&mut *tx, compound_id, state.clock.now()).await?;
    Term::of_months(today, months)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidMonths, e.to_string()))?;
    let space = store::first_free_space(&mut *tx, space_ids, state.clock.now())
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                ErrorCode::NoSpaceLeft,
                "every space of this lottery is rented: the office will contract yours",
            )
        })?;
    let a = Application {
        target: Target::Space(space),
        plate,
        months,
        starts_on: None,
        renter: Renter::Owner(owner_id),
        applied_by: AppliedBy::Lottery,
    };
    let (rental, intent) = apply_in(&mut *tx, state, tenant_id, a, None).await?;
    let today = today_in(&mut *tx, rental.compound_id, state.clock.now()).await?;
    Ok((rental.id, answer(state, &rental, &intent, today)))
}

/// Writes the unpaid term `new` (expiring first any unpaid hold that ran out in its way) and
/// its payment intent, valid as long as the hold.
pub(crate) async fn hold(
    tx: &mut PgConnection,
    new: &NewRental<'_>,
    now: DateTime<Utc>,
) -> Result<(Rental, Intent), ApiError> {
    store::expire_holds_in_way(&mut *tx, new.space_id, new.lot_id, new.plate, now).await?;
    if new.space_id.is_none() {
        check_pass_places(&mut *tx, new, now).await?;
    }
    store::insert(&mut *tx, new).await.map_err(|e| {
        if is_unique_violation(&e, "rentals_one_per_space") {
            ApiError::conflict(
                ErrorCode::SpaceRented,
                "this space is rented (or held for an application) for some of these days",
            )
        } else if is_unique_violation(&e, "rentals_one_per_plate") {
            ApiError::conflict(
                ErrorCode::PlateHasRental,
                format!(
                    "{} already has a rental in this lot for some of these days",
                    new.plate
                ),
            )
        } else if is_unique_violation(&e, "rentals_one_renewal") {
            ApiError::conflict(ErrorCode::AlreadyRenewed, "this term was renewed already")
        } else {
            e.into()
        }
    })?;
    let bill = json!({
        "kind": "rental", "months": new.months, "monthly_price": Money::total(new.monthly_price).map_err(ApiError::internal)?,
        "discount_pct": new.discount_pct.normalize().to_string(), "total": Money::total(new.price).map_err(ApiError::internal)?,
        "starts_on": new.starts_on, "ends_on": new.ends_on, "plate": new.plate,
    });
    let intent = payments::insert_intent(
        &mut *tx,
        &NewIntent {
            tenant_id: new.tenant_id,
            pays: Pays::Rental(new.id),
            amount: new.price,
            expires_at: new.hold_expires_at,
            bill: &bill,
            priced_at: now,
            filing_no: Some(new.filing_no),
        },
    )
    .await?;
    let rental = store::rental(&mut *tx, new.tenant_id, new.id)
        .await?
        .ok_or_else(|| ApiError::internal("rental vanished"))?;
    Ok((rental, intent))
}

/// A pool pass takes one of the places the lot reserves for passes (`pass_places`): sold only
/// while fewer passes than that are in force on every day of the term. Decided under the lot's
/// lock, so passes applied for at once cannot oversell it.
async fn check_pass_places(
    tx: &mut PgConnection,
    new: &NewRental<'_>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let places = store::pass_places_for_update(&mut *tx, new.lot_id)
        .await?
        .ok_or(ApiError::NotFound("lot"))?;
    if places == 0 {
        return Err(ApiError::conflict(
            ErrorCode::NoPassPlaces,
            "this lot sells no pool passes: the office has reserved no places for them \
             (the lot's pass_places)",
        ));
    }
    store::expire_pass_holds(&mut *tx, new.lot_id, now).await?;
    let sold =
        store::passes_at_peak(&mut *tx, new.lot_id, (new.starts_on, new.ends_on), now).await?;
    if sold >= i64::from(places) {
        return Err(ApiError::conflict(
            ErrorCode::PassesSoldOut,
            format!(
                "all {places} places this lot reserves for pool passes are taken on some day \
                 from {} to {}",
                new.starts_on, new.ends_on
            ),
        ));
    }
    Ok(())
}

/// The most pool passes of the lot in force — paid, or held and not run out — on any one day
/// from the compound's today on: the places its passes need, below which its `pass_places`
/// may not go.
pub(crate) async fn passes_sold(
    conn: &mut PgConnection,
    (compound_id, lot_id): (Uuid, Uuid),
    now: DateTime<Utc>,
) -> Result<i64, ApiError> {
    let today = today_in(&mut *conn, compound_id, now).await?;
    match store::last_pass_day(&mut *conn, lot_id).await? {
        Some(last) if last >= today => {
            Ok(store::passes_at_peak(&mut *conn, lot_id, (today, last), now).await?)
        }
        _ => Ok(0),
    }
}

/// A term as answered: its row, and where it stands on the compound's `today`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RentalView {
    #[serde(flatten)]
    rental: Rental,
    /// Where the term stands on the compound's today: `awaiting_payment`, `expired`,
    /// `cancelled`, `upcoming`, `active`, `in_grace` (after its end, still admitted),
    /// `lapsed`, `ended` (ended early) or `renewed`.
    standing: &'static str,
}

/// A term held for its payment, and the payment intent to pay it by.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RentalAnswer {
    rental: RentalView,
    payment_intent: crate::settlement::payments::IntentView,
}

/// A term as answered: its row, and where it stands on the compound's `today`.
pub(crate) fn view(rental: &Rental, today: NaiveDate) -> RentalView {
    RentalView {
        rental: rental.clone(),
        standing: standing(rental, today),
    }
}

/// Where a term stands on `today`: `awaiting_payment`, `expired`, `cancelled`, `upcoming`,
/// `active`, `in_grace` (after its end, still admitted), `lapsed`, `ended` (ended early) or
/// `renewed` (its end passed and the next term, paid, took over).
pub fn standing(rental: &Rental, today: NaiveDate) -> &'static str {
    match rental.status.as_str() {
        "awaiting_payment" => "awaiting_payment",
        "expired" => "expired",
        "cancelled" => "cancelled",
        "ended" if today > rental.ends_on => "ended",
        _ if today < rental.starts_on => "upcoming",
        _ if today <= rental.ends_on => "active",
        _ if rental.renewed_by.is_some() => "renewed",
        _ if today <= rental.ends_on + Duration::days(i64::from(rental.grace_days)) => "in_grace",
        _ => "lapsed",
    }
}

fn answer(state: &AppState, rental: &Rental, intent: &Intent, today: NaiveDate) -> RentalAnswer {
    RentalAnswer {
        rental: view(rental, today),
        payment_intent: crate::settlement::payments::intent_view(state, intent),
    }
}

/// Confirms a rental's term paid by `intent` (a provider's notification, under the intent's
/// lock): `false` if the term no longer awaits its payment (its hold lapsed, it was paid at
/// the booth), and the money is then owed back by the caller.
pub async fn confirm_paid(
    tx: &mut PgConnection,
    intent: &Intent,
    rental_id: Uuid,
    amount: Money,
    paid_at: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let Some(rental) = store::rental_for_update(&mut *tx, intent.tenant_id, rental_id).await?
    else {
        return Ok(false);
    };
    if rental.status != "awaiting_payment" {
        return Ok(false);
    }
    payments::mark_intent_paid(&mut *tx, intent.id, paid_at).await?;
    let key = format!("intent:{}", intent.id);
    let Some(transaction_id) =
        credit(tx, &rental, &key, amount, Source::Provider, paid_at, None).await?
    else {
        return Err(ApiError::internal(
            "a pending intent's key was posted already",
        ));
    };
    settle(tx, &rental, amount, "provider", transaction_id, paid_at).await?;
    Ok(true)
}

/// Posts a term's payment split by its kind of space; `None` if `key` was posted already.
pub(crate) async fn credit(
    tx: &mut PgConnection,
    rental: &Rental,
    key: &str,
    amount: Money,
    source: Source,
    paid_at: DateTime<Utc>,
    shift: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    let who = store::parties(&mut *tx, rental.id, paid_at)
        .await?
        .ok_or_else(|| ApiError::internal("payment for a missing rental"))?;
    let mut memo = format!(
        "月租 {} {}–{}",
        rental.plate, rental.starts_on, rental.ends_on
    );
    if let Some(shift) = shift {
        memo.push_str(&cash_mark(shift));
    }
    let received = posting::Received {
        amount,
        source,
        paid_at,
    };
    let payee = posting::RentalPayee {
        tenant_id: who.tenant_id,
        compound_id: who.compound_id,
        space_kind: &who.space_kind,
        space_owner_id: who.space_owner_id,
        plate: &who.plate,
        policy: who.policy.as_ref(),
    };
    posting::credit_rental_payment(tx, &payee, rental.id, key, received, &memo).await
}

/// How a cash payment's memo ends: the shift that took it (what a retry is compared with).
pub(crate) fn cash_mark(shift: &str) -> String {
    format!("（现金 {shift}）")
}

/// Records a term paid: its row, the owner's waiting entry served, the renter told.
pub(crate) async fn settle(
    tx: &mut PgConnection,
    rental: &Rental,
    amount: Money,
    method: &str,
    transaction_id: Uuid,
    paid_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    store::mark_paid(
        &mut *tx,
        &store::Paid {
            id: rental.id,
            amount: amount.yuan(),
            method,
            transaction_id,
            paid_at,
        },
    )
    .await?;
    if let Some(owner_id) = rental.owner_id {
        store::serve_waiting(&mut *tx, owner_id, &rental.space_kind, rental.id).await?;
        let data = json!({
            "rental_id": rental.id, "plate": rental.plate, "space_code": rental.space_code,
            "starts_on": rental.starts_on, "ends_on": rental.ends_on, "paid": amount,
        });
        let tenant_id = rental.tenant_id;
        crate::webhooks::to_owner(tx, tenant_id, owner_id, "rental.paid", data, paid_at).await?;
    }
    Ok(())
}

// ---- routes --------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OwnerApplication {
    lot_id: Option<Uuid>,
    space_id: Option<Uuid>,
    plate: String,
    months: u32,
    starts_on: Option<NaiveDate>,
}

/// An owner applies for a rental for one of their registered vehicles: 201 with the held term
/// and the payment intent to pay it by.
#[utoipa::path(tag = "owner", operation_id = "apply_for_rental", security(("owner_token" = [])), request_body = OwnerApplication, responses((status = 201, description = "Created: the held term and its payment intent", body = RentalAnswer)))]
#[post("/rentals")]
async fn owner_apply(
    state: web::Data<AppState>,
    owner: Owner,
    body: crate::input::Json<OwnerApplication>,
) -> Result<HttpResponse, ApiError> {
    let plate = crate::validate::plate("plate", &body.plate)?;
    let compound = store::owner_compound(&state.db, owner.tenant_id, owner.owner_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let application = Application {
        target: target(body.lot_id, body.space_id)?,
        plate,
        months: body.months,
        starts_on: body.starts_on,
        renter: Renter::Owner(owner.owner_id),
        applied_by: AppliedBy::Owner,
    };
    let (rental, intent) = apply(&state, owner.tenant_id, application, Some(compound)).await?;
    let today = local_today(&state, rental.compound_id).await?;
    Ok(HttpResponse::Created().json(answer(&state, &rental, &intent, today)))
}

pub(crate) async fn local_today(
    state: &AppState,
    compound_id: Uuid,
) -> Result<NaiveDate, ApiError> {
    let mut conn = state.db.acquire().await?;
    today_in(&mut conn, compound_id, state.clock.now()).await
}

/// The household's rentals, newest first, each with where its term stands.
#[utoipa::path(tag = "owner", operation_id = "list_own_rentals", security(("owner_token" = [])), responses((status = 200, description = "The household's rentals", body = Vec<RentalView>)))]
#[get("/rentals")]
async fn owner_list(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, ApiError> {
    let compound = store::owner_compound(&state.db, owner.tenant_id, owner.owner_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let today = local_today(&state, compound).await?;
    let rentals = store::of_owner(&state.db, owner.tenant_id, owner.owner_id).await?;
    let out: Vec<RentalView> = rentals.iter().map(|r| view(r, today)).collect();
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NonOwnerBody {
    name: String,
    phone: Option<String>,
    vehicle_class: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffApplication {
    lot_id: Option<Uuid>,
    space_id: Option<Uuid>,
    plate: String,
    months: u32,
    starts_on: Option<NaiveDate>,
    /// The renting owner; or `renter` for anyone else.
    owner_id: Option<Uuid>,
    renter: Option<NonOwnerBody>,
}

/// Staff enter a rental for an owner (`owner_id`) or anyone else (`renter`).
#[utoipa::path(tag = "staff", operation_id = "enter_rental", security(("staff_token" = [])), request_body = StaffApplication, responses((status = 201, description = "Created: the held term and its payment intent", body = RentalAnswer)))]
#[post("/compounds/{id}/rentals")]
async fn staff_apply(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<StaffApplication>,
) -> Result<HttpResponse, ApiError> {
    let compound = crate::auth::owned_compound(&state, &staff, *id).await?;
    let plate = crate::validate::plate("plate", &body.plate)?;
    let renter = match (&body.owner_id, &body.renter) {
        (Some(owner_id), None) => {
            if !crate::store::registry::owner_in_compound(
                &state.db,
                staff.tenant_id,
                compound.id,
                *owner_id,
            )
            .await?
            {
                return Err(ApiError::NotFound("owner"));
            }
            Renter::Owner(*owner_id)
        }
        (None, Some(r)) => Renter::NonOwner {
            name: crate::validate::text("renter.name", &r.name, 200)?,
            phone: r
                .phone
                .as_deref()
                .map(|p| crate::validate::text("renter.phone", p, 40))
                .transpose()?,
            class: match r.vehicle_class.as_deref() {
                Some(c) => crate::validate::vehicle_class("renter.vehicle_class", c)?,
                None => VehicleClass::Small,
            },
        },
        _ => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidRenter,
                "name either owner_id (an owner of the compound) or renter (anyone else)",
            ))
        }
    };
    let application = Application {
        target: target(body.lot_id, body.space_id)?,
        plate,
        months: body.months,
        starts_on: body.starts_on,
        renter,
        applied_by: AppliedBy::Staff,
    };
    let (rental, intent) = apply(&state, staff.tenant_id, application, Some(compound.id)).await?;
    let today = local_today(&state, compound.id).await?;
    Ok(HttpResponse::Created().json(answer(&state, &rental, &intent, today)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only paid terms, not renewed, ending within this many days (or in their grace).
    expiring_within_days: Option<i64>,
}

/// The compound's rentals, newest first; with `expiring_within_days`, the staff's list of
/// terms to chase for renewal, soonest first.
#[utoipa::path(tag = "staff", operation_id = "list_rentals", params(ListQuery), security(("staff_token" = [])), responses((status = 200, description = "The compound's rentals", body = Vec<RentalView>)))]
#[get("/compounds/{id}/rentals")]
async fn staff_list(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let compound = crate::auth::owned_compound(&state, &staff, *id).await?;
    let today = local_today(&state, compound.id).await?;
    let expiring = match query.expiring_within_days {
        None => None,
        Some(days) if (0..=366).contains(&days) => Some((today, today + Duration::days(days))),
        Some(_) => {
            return Err(ApiError::invalid(
                ErrorCode::InvalidField,
                "expiring_within_days: 0 to 366",
            ))
        }
    };
    let rentals =
        store::of_compound(&state.db, staff.tenant_id, compound.id, expiring, LIST_MAX).await?;
    let out: Vec<RentalView> = rentals.iter().map(|r| view(r, today)).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// One rental: its term, price, payment and where it stands.
#[utoipa::path(tag = "staff", operation_id = "show_rental", security(("staff_token" = [])), responses((status = 200, description = "The rental", body = RentalView)))]
#[get("/rentals/{id}")]
async fn staff_show(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let rental = store::rental(&state.db, staff.tenant_id, *id)
        .await?
        .ok_or(ApiError::NotFound("rental"))?;
    let today = local_today(&state, rental.compound_id).await?;
    Ok(HttpResponse::Ok().json(view(&rental, today)))
}
