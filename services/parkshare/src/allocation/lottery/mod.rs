//! The lottery (摇号) for new or released spaces: staff announce it with a published
//! commitment, owners apply in the window, staff draw it, winners get offers that pass down the
//! list when declined or lapsed, and anyone can draw it again from what is published
//! (docs/lottery.md; the algorithm is `parkshare_allocation::lottery`).
//!
//! - staff (`/v1/admin`): announce, list, read (with owners and offers), draw;
//! - owners (`/v1/owner`): their compound's lotteries, apply, accept or decline an offer;
//! - anyone (`/v1/public`): a lottery as published, and the check of a published draw.
//!
//! Offers pass on lazily: every read or answer of a lottery first offers the places that
//! declined or lapsed offers freed to the next applicants, under the lottery's lock.

pub(crate) mod store;

use crate::error::ErrorCode;
use std::collections::HashMap;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use parkshare_allocation::lottery::{self, Applicant, Published, Seed};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::allocation::allotment::{allotting, counts, offer_state, OfferState};
use crate::auth::{Owner, Staff};
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::registry;
use store::{Draw, Lottery, Offer};

/// The longest application window.
const WINDOW_DAYS_MAX: i64 = 90;
/// How far in the past an opening may be given (clocks differ): an opening earlier than this
/// would let applications in before the commitment was published.
const OPENING_SLACK_SECONDS: i64 = 300;
/// A winner's time to answer, when staff give none: three days.
const OFFER_MINUTES_DEFAULT: i32 = 3 * 24 * 60;
/// A winner has at least an hour to answer.
const OFFER_MINUTES_MIN: i32 = 60;
const OFFER_MINUTES_MAX: i32 = 30 * 24 * 60;
/// The most spaces one lottery allots.
const SPACES_MAX: usize = 1_000;

pub fn admin_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(announce)
        .service(list_for_staff)
        .service(read_for_staff)
        .service(run_draw);
}

pub fn owner_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_for_owner)
        .service(apply)
        .service(accept_offer)
        .service(decline_offer);
}

pub fn public_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(read_published).service(verify_published);
}

/// Where a lottery stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Stage {
    /// Announced, its commitment published; applications not open yet.
    Announced,
    Open,
    /// Applications closed, not drawn yet.
    Closed,
    /// Drawn; its places are still being given (an offer open, a place not paid for yet, or a
    /// free place with applicants left).
    Drawn,
    /// Over: every place taken and paid for, or nobody left on the list. Its spaces are free
    /// of it: a space whose winner's term ends can be rented or put in a new lottery.
    Settled,
}

fn stage(lottery: &Lottery, course: lottery::Course, now: DateTime<Utc>) -> Stage {
    if course == lottery::Course::Settled {
        Stage::Settled
    } else if course == lottery::Course::Allotting {
        Stage::Drawn
    } else if now < lottery.applications_open_at {
        Stage::Announced
    } else if now < lottery.applications_close_at {
        Stage::Open
    } else {
        Stage::Closed
    }
}

/// When a lapsed offer lapsed: its rental's hold ran out, the office did not contract it in
/// time, or it was left unanswered. `None` for an offer that has not lapsed at `now`.
fn lapsed_at(offer: &Offer, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (offer_state(offer, now) == OfferState::Lapsed).then(|| {
        offer
            .lapsed_at
            .or(offer.contract_by)
            .unwrap_or(offer.expires_at)
    })
}

/// The deadline of a place accepted without a car, while it is still open to contract.
fn contract_by(offer: &Offer, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    offer
        .contract_by
        .filter(|_| offer_state(offer, now) == OfferState::Accepted)
}

/// A lottery read under its lock: its applications, draw and offers, with the offers passed on.
struct Full {
    lottery: Lottery,
    applications: Vec<store::Application>,
    draw: Option<Draw>,
    offers: Vec<Offer>,
    now: DateTime<Utc>,
}

impl Full {
    fn places(&self) -> usize {
        self.lottery.space_ids.len()
    }

    fn course(&self) -> lottery::Course {
        lottery::course(
            self.draw.is_some(),
            self.places(),
            self.draw.as_ref().map_or(0, |d| d.draw_order.len()),
            counts(&self.offers, self.now),
        )
    }

    fn applicants(&self) -> Vec<Applicant> {
        self.applications
            .iter()
            .map(|a| Applicant {
                tier: u8::try_from(a.tier).unwrap_or(u8::MAX),
                key: a.unit.clone(),
            })
            .collect()
    }

    fn unit_of(&self, owner_id: Uuid) -> &str {
        self.applications
            .iter()
            .find(|a| a.owner_id == owner_id)
            .map_or("", |a| a.unit.as_str())
    }

    /// What anyone may see; the seed and the order once drawn.
    fn public_view(&self) -> PublicLottery {
        PublicLottery {
            lottery: self.core(),
            offers: self.offers.iter().map(|o| self.public_offer(o)).collect(),
        }
    }

    fn core(&self) -> LotteryCore {
        let lottery = &self.lottery;
        let applicants = self.applicants();
        let published = self.draw.as_ref().map(|draw| Published {
            lottery_id: lottery.id,
            algorithm: lottery.algorithm.clone(),
            commitment: lottery.commitment.clone(),
            seed: lottery.seed.clone(),
            places: u32::try_from(self.places()).unwrap_or(u32::MAX),
            applicants: applicants.clone(),
            applicants_digest: Some(draw.applicants_digest.clone()),
            order: draw.draw_order.clone(),
        });
        let closed = self.now >= lottery.applications_close_at || self.draw.is_some();
        LotteryCore {
            id: lottery.id,
            title: lottery.title.clone(),
            stage: stage(lottery, self.course(), self.now),
            places: self.places(),
            applications_open_at: lottery.applications_open_at,
            applications_close_at: lottery.applications_close_at,
            offer_minutes: lottery.offer_minutes,
            algorithm: lottery.algorithm.clone(),
            commitment: lottery.commitment.clone(),
            announced_at: lottery.created_at,
            applicants_digest: match &self.draw {
                Some(draw) => Some(draw.applicants_digest.clone()),
                None => closed
                    .then(|| lottery::applicants_digest(&applicants).ok())
                    .flatten(),
            },
            applicants,
            drawn_at: self.draw.as_ref().map(|d| d.drawn_at),
            published,
        }
    }

    fn public_offer(&self, offer: &Offer) -> PublicOffer {
        PublicOffer {
            position: offer.position,
            unit: self.unit_of(offer.owner_id).to_owned(),
            state: offer_state(offer, self.now),
            offered_at: offer.offered_at,
            expires_at: offer.expires_at,
        }
    }

    /// What the firm's staff see: the public view with the spaces and who the applicants are.
    fn staff_view(&self) -> StaffLottery {
        StaffLottery {
            lottery: self.core(),
            offers: self
                .offers
                .iter()
                .map(|offer| StaffOffer {
                    offer: self.public_offer(offer),
                    owner_id: offer.owner_id,
                    answered_at: offer.answered_at,
                    lapsed_at: lapsed_at(offer, self.now),
                    contract_by: contract_by(offer, self.now),
                })
                .collect(),
            compound_id: self.lottery.compound_id,
            space_ids: self.lottery.space_ids.clone(),
            applications: self.applications.clone(),
        }
    }

    /// What one owner sees: the lottery, their application and their offer.
    fn owner_view(&self, owner_id: Uuid) -> OwnerLottery {
        let application = self.applications.iter().find(|a| a.owner_id == owner_id);
        OwnerLottery {
            lottery: self.public_view(),
            my_application: application.cloned(),
            my_position: application.and_then(|a| {
                self.draw
                    .as_ref()
                    .and_then(|d| d.draw_order.iter().position(|unit| *unit == a.unit))
            }),
            my_offer: self
                .offers
                .iter()
                .find(|o| o.owner_id == owner_id)
                .map(|o| OwnOffer {
                    position: o.position,
                    state: offer_state(o, self.now),
                    offered_at: o.offered_at,
                    expires_at: o.expires_at,
                    lapsed_at: lapsed_at(o, self.now),
                    contract_by: contract_by(o, self.now),
                }),
            rental: None,
        }
    }
}

/// What every view of a lottery shows.
#[derive(Serialize, utoipa::ToSchema)]
struct LotteryCore {
    id: Uuid,
    title: String,
    stage: Stage,
    /// How many spaces it allots.
    places: usize,
    applications_open_at: DateTime<Utc>,
    applications_close_at: DateTime<Utc>,
    /// A winner's time to accept.
    offer_minutes: i32,
    algorithm: String,
    /// The commitment to the secret seed, published at the announcement.
    commitment: String,
    announced_at: DateTime<Utc>,
    /// The households applied (their units) and their tiers.
    applicants: Vec<Applicant>,
    /// The digest of `applicants`, once applications have closed.
    applicants_digest: Option<String>,
    drawn_at: Option<DateTime<Utc>>,
    /// Once drawn: everything needed to draw it again (`POST /v1/public/lotteries/verify`).
    published: Option<Published>,
}

/// A lottery as anyone sees it.
#[derive(Serialize, utoipa::ToSchema)]
struct PublicLottery {
    #[serde(flatten)]
    lottery: LotteryCore,
    offers: Vec<PublicOffer>,
}

/// A place offered to a winner, as anyone sees it.
#[derive(Serialize, utoipa::ToSchema)]
struct PublicOffer {
    /// The winner's place in the drawn order (0 first).
    position: i32,
    unit: String,
    state: OfferState,
    offered_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// A lottery as the firm's staff see it: with its spaces, the applications and who was
/// offered a place.
#[derive(Serialize, utoipa::ToSchema)]
struct StaffLottery {
    #[serde(flatten)]
    lottery: LotteryCore,
    offers: Vec<StaffOffer>,
    compound_id: Uuid,
    space_ids: Vec<Uuid>,
    applications: Vec<store::Application>,
}

/// An offer with its owner and when it was answered.
#[derive(Serialize, utoipa::ToSchema)]
struct StaffOffer {
    #[serde(flatten)]
    offer: PublicOffer,
    owner_id: Uuid,
    answered_at: Option<DateTime<Utc>>,
    /// When a lapsed offer lapsed (its rental's hold, its contract deadline or its answer
    /// deadline).
    lapsed_at: Option<DateTime<Utc>>,
    /// Accepted without a car and not contracted yet: the office contracts it by then, or it
    /// lapses and passes down the list.
    contract_by: Option<DateTime<Utc>>,
}

/// A lottery as one owner sees it: their application, place and offer.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnerLottery {
    #[serde(flatten)]
    lottery: PublicLottery,
    my_application: Option<store::Application>,
    /// The household's place in the drawn order (0 first), once drawn.
    my_position: Option<usize>,
    my_offer: Option<OwnOffer>,
    /// Accepted with a car: the rental of the won space (only in that answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    rental: Option<crate::allocation::rentals::RentalAnswer>,
}

/// The household's own offer.
#[derive(Serialize, utoipa::ToSchema)]
struct OwnOffer {
    position: i32,
    state: OfferState,
    offered_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// When it lapsed, if it did.
    lapsed_at: Option<DateTime<Utc>>,
    /// Accepted without a car and not contracted yet: the office contracts it by then, or it
    /// lapses and passes down the list.
    contract_by: Option<DateTime<Utc>>,
}

/// An application just made.
#[derive(Serialize, utoipa::ToSchema)]
struct Applied {
    lottery_id: Uuid,
    unit: String,
    /// 0 for a household without a space of its own (drawn first), else 1.
    tier: i16,
    applied_at: DateTime<Utc>,
}

/// What drawing a published lottery again found.
#[derive(Serialize, utoipa::ToSchema)]
struct VerdictAnswer {
    #[serde(flatten)]
    verdict: lottery::Verdict,
    /// All of the checks hold.
    holds: bool,
}

/// A lottery as the compound's disclosure page announces it: its commitment is public from
/// the moment it is announced.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notice {
    pub id: Uuid,
    pub title: String,
    pub places: i32,
    pub applications_open_at: DateTime<Utc>,
    pub applications_close_at: DateTime<Utc>,
    pub commitment: String,
    pub drawn_at: Option<DateTime<Utc>>,
    pub applicants: i64,
}

/// The lotteries a disclosure page lists.
const NOTICES_MAX: i64 = 5;

/// The compound's latest lotteries, for its disclosure page.
pub async fn notices(
    db: &sqlx::PgPool,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<Notice>> {
    store::notices(db, tenant_id, compound_id, NOTICES_MAX).await
}

/// Reads a lottery under its exclusive lock and passes freed places on to the next applicants,
/// as of `now` (the service's clock, kept to the microsecond as Postgres keeps it: an offer
/// reads back as it was first shown).
async fn full(
    conn: &mut PgConnection,
    lottery: Lottery,
    now: DateTime<Utc>,
) -> Result<Full, ApiError> {
    store::lock(conn, lottery.id, true).await?;
    let applications = store::applications(&mut *conn, lottery.id).await?;
    let draw = store::draw(&mut *conn, lottery.id).await?;
    let mut full = Full {
        offers: store::offers(&mut *conn, lottery.id).await?,
        lottery,
        applications,
        draw,
        now,
    };
    pass_offers_on(conn, &mut full).await?;
    Ok(full)
}

/// Offers every place not taken and not under an open offer to the next applicants in the
/// draw's order, each for the lottery's offer time from now.
async fn pass_offers_on(conn: &mut PgConnection, full: &mut Full) -> Result<(), ApiError> {
    let Some(draw) = &full.draw else {
        return Ok(());
    };
    let held = full
        .offers
        .iter()
        .filter(|o| {
            matches!(
                offer_state(o, full.now),
                OfferState::Accepted | OfferState::Open
            )
        })
        .count();
    let mut free = full.places().saturating_sub(held);
    let mut next = full
        .offers
        .iter()
        .map(|o| usize::try_from(o.position).unwrap_or(0) + 1)
        .max()
        .unwrap_or(0);
    let owners: HashMap<&str, Uuid> = full
        .applications
        .iter()
        .map(|a| (a.unit.as_str(), a.owner_id))
        .collect();
    let mut added = Vec::new();
    while free > 0 && next < draw.draw_order.len() {
        let owner_id = *owners
            .get(draw.draw_order[next].as_str())
            .ok_or_else(|| ApiError::internal("a drawn unit has no application"))?;
        let position = i32::try_from(next).map_err(ApiError::internal)?;
        let expires_at = full.now + Duration::minutes(i64::from(full.lottery.offer_minutes));
        store::insert_offer(
            &mut *conn,
            full.lottery.id,
            position,
            owner_id,
            full.now,
            expires_at,
        )
        .await?;
        added.push(Offer {
            position,
            owner_id,
            offered_at: full.now,
            expires_at,
            answer: None,
            answered_at: None,
            lapsed_at: None,
            rental_paid: false,
            contract_by: None,
        });
        free -= 1;
        next += 1;
    }
    full.offers.extend(added);
    Ok(())
}

fn check_title(title: &str) -> Result<(), ApiError> {
    crate::input::check_text(title, 200)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidTitle, format!("title: {e}")))?;
    if title.trim().is_empty() {
        return Err(ApiError::invalid(
            ErrorCode::InvalidTitle,
            "title must not be empty",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AnnounceBody {
    title: String,
    /// The common-area or developer-unsold spaces allotted.
    space_ids: Vec<Uuid>,
    /// When applications open; now if absent. Never earlier than now: the commitment is
    /// published before anyone can apply.
    applications_open_at: Option<DateTime<Utc>>,
    applications_close_at: DateTime<Utc>,
    /// A winner's time to accept, in minutes (60 to 43,200; three days if absent).
    offer_minutes: Option<i32>,
}

/// Announce a lottery: its secret seed is drawn here and only its commitment shown.
#[utoipa::path(tag = "staff", operation_id = "announce_lottery", security(("staff_token" = [])), request_body = AnnounceBody, responses((status = 201, description = "Created", body = StaffLottery)))]
#[post("/compounds/{id}/lotteries")]
async fn announce(
    state: web::Data<AppState>,
    staff: Staff,
    compound_id: web::Path<Uuid>,
    body: crate::input::Json<AnnounceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let compound = registry::compound(&state.db, staff.tenant_id, *compound_id)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    check_title(&body.title)?;
    let now = state.clock.now();
    let open_at = body.applications_open_at.unwrap_or(now).max(now);
    if body
        .applications_open_at
        .is_some_and(|at| at < now - Duration::seconds(OPENING_SLACK_SECONDS))
    {
        return Err(ApiError::invalid(
            ErrorCode::OpeningInThePast,
            "applications_open_at is in the past: applications may open only after the \
             commitment is published, i.e. now or later",
        ));
    }
    let close_at = body.applications_close_at;
    if close_at <= open_at {
        return Err(ApiError::invalid(
            ErrorCode::WindowEmpty,
            "applications_close_at must be after applications_open_at (and after now)",
        ));
    }
    if close_at - open_at < state.lottery_window_min {
        return Err(ApiError::invalid(
            ErrorCode::WindowTooShort,
            format!(
                "applications stay open at least {} hours, so that owners see the commitment \
                 and the applicants in time",
                state.lottery_window_min.num_hours()
            ),
        ));
    }
    if close_at - open_at > Duration::days(WINDOW_DAYS_MAX) {
        return Err(ApiError::invalid(
            ErrorCode::WindowTooLong,
            format!("an application window lasts at most {WINDOW_DAYS_MAX} days"),
        ));
    }
    let offer_minutes = body.offer_minutes.unwrap_or(OFFER_MINUTES_DEFAULT);
    if !(OFFER_MINUTES_MIN..=OFFER_MINUTES_MAX).contains(&offer_minutes) {
        return Err(ApiError::invalid(
            ErrorCode::InvalidOfferMinutes,
            format!("offer_minutes must be {OFFER_MINUTES_MIN} to {OFFER_MINUTES_MAX}"),
        ));
    }
    let mut space_ids = body.space_ids.clone();
    space_ids.sort_unstable();
    space_ids.dedup();
    if space_ids.len() != body.space_ids.len() {
        return Err(ApiError::invalid(
            ErrorCode::DuplicateSpace,
            "space_ids names a space twice",
        ));
    }
    if space_ids.is_empty() || space_ids.len() > SPACES_MAX {
        return Err(ApiError::invalid(
            ErrorCode::InvalidSpaces,
            format!("a lottery allots 1 to {SPACES_MAX} spaces"),
        ));
    }
    let mut tx = state.db.begin().await?;
    // One lottery at a time per space: announcements of the compound queue here, so two cannot
    // both find a space free; a space stays in its lottery until that one is settled.
    store::lock_compound(&mut tx, compound.id).await?;
    if let Some((space, other)) = allotting(&mut tx, compound.id, &space_ids, now).await? {
        return Err(ApiError::conflict(
            ErrorCode::SpaceInAnotherLottery,
            format!(
                "space {space} is being allotted by lottery {other}, not settled yet (an offer \
                 open or unpaid, or applicants left to offer a place to)"
            ),
        ));
    }
    let refused =
        store::unallottable_spaces(&mut *tx, staff.tenant_id, compound.id, &space_ids).await?;
    if let Some((id, why)) = refused.first() {
        return Err(ApiError::invalid(
            ErrorCode::SpaceNotAllottable,
            match why.as_str() {
                "unknown" => format!("space {id} is not a space of this compound"),
                kind => format!(
                    "space {id} is {kind}: a lottery allots common-area and developer-unsold \
                     spaces only"
                ),
            },
        ));
    }
    // A lottery allots free spaces: not one rented now or later (its winner could never have
    // it), nor one run as metered visitor parking.
    if let Some(space) =
        crate::allocation::rentals::store::rented_from_today(&mut *tx, &space_ids, now).await?
    {
        return Err(ApiError::conflict(
            ErrorCode::SpaceRented,
            format!("space {space} is rented (or held for an application) from today or later"),
        ));
    }
    if let Some(space) = store::metered_space(&mut *tx, &space_ids).await? {
        return Err(ApiError::conflict(
            ErrorCode::SpaceMetered,
            format!("space {space} is run as metered visitor parking, not allotted"),
        ));
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let seed = Seed::from_bytes(bytes);
    let id = Uuid::new_v4();
    let places = u32::try_from(space_ids.len()).map_err(ApiError::internal)?;
    let commitment = seed.commitment(id, places);
    let lottery = store::insert(
        &mut *tx,
        &store::NewLottery {
            id,
            tenant_id: staff.tenant_id,
            compound_id: compound.id,
            title: body.title.trim(),
            space_ids: &body.space_ids,
            applications_open_at: open_at,
            applications_close_at: close_at,
            offer_minutes,
            commitment: &commitment,
            seed: &seed.to_hex(),
            created_by: &staff.label,
        },
    )
    .await?;
    tracing::info!(lottery = %id, compound = %compound.id, %commitment, "lottery announced");
    let full = full(&mut tx, lottery, state.clock.now()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(full.staff_view()))
}

/// The compound's lotteries, newest first.
#[utoipa::path(tag = "staff", operation_id = "list_for_staff", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<StaffLottery>)))]
#[get("/compounds/{id}/lotteries")]
async fn list_for_staff(
    state: web::Data<AppState>,
    staff: Staff,
    compound_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    registry::compound(&state.db, staff.tenant_id, *compound_id)
        .await?
        .ok_or(ApiError::NotFound("compound"))?;
    let lotteries = store::of_compound(&state.db, staff.tenant_id, *compound_id).await?;
    let mut tx = state.db.begin().await?;
    let mut views = Vec::with_capacity(lotteries.len());
    for lottery in lotteries {
        views.push(
            full(&mut tx, lottery, state.clock.now())
                .await?
                .staff_view(),
        );
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(views))
}

async fn staff_lottery(
    conn: &mut PgConnection,
    staff: &Staff,
    id: Uuid,
) -> Result<Lottery, ApiError> {
    store::lottery(&mut *conn, Some(staff.tenant_id), id)
        .await?
        .ok_or(ApiError::NotFound("lottery"))
}

/// A lottery with its applicants (owner ids too) and offers.
#[utoipa::path(tag = "staff", operation_id = "read_for_staff", security(("staff_token" = [])), responses((status = 200, description = "Done", body = StaffLottery)))]
#[get("/lotteries/{id}")]
async fn read_for_staff(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let lottery = staff_lottery(&mut tx, &staff, *id).await?;
    let full = full(&mut tx, lottery, state.clock.now()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(full.staff_view()))
}

/// Draw the lottery once its applications have closed: the seed is revealed, the order
/// recorded, the first places offered. Drawing again answers the same draw.
#[utoipa::path(tag = "staff", operation_id = "run_draw", security(("staff_token" = [])), responses((status = 200, description = "Done", body = StaffLottery)))]
#[post("/lotteries/{id}/draw")]
async fn run_draw(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let lottery = staff_lottery(&mut tx, &staff, *id).await?;
    // The exclusive lock waits for applications under way; later ones find the window shut.
    store::lock(&mut tx, lottery.id, true).await?;
    if store::draw(&mut *tx, lottery.id).await?.is_none() {
        let now = state.clock.now();
        if now < lottery.applications_close_at {
            return Err(ApiError::conflict(
                ErrorCode::ApplicationsStillOpen,
                format!(
                    "applications close at {}; the draw can run only after that",
                    lottery.applications_close_at
                ),
            ));
        }
        let applicants: Vec<Applicant> = store::applications(&mut *tx, lottery.id)
            .await?
            .into_iter()
            .map(|a| Applicant {
                tier: u8::try_from(a.tier).unwrap_or(u8::MAX),
                key: a.unit,
            })
            .collect();
        let seed = Seed::parse(&lottery.seed).map_err(ApiError::internal)?;
        let order = lottery::draw(lottery.id, &seed, &applicants).map_err(ApiError::internal)?;
        let digest = lottery::applicants_digest(&applicants).map_err(ApiError::internal)?;
        store::insert_draw(&mut *tx, lottery.id, &order, &digest, &staff.label, now).await?;
        tracing::info!(lottery = %lottery.id, applicants = order.len(), "lottery drawn");
    }
    let full = full(&mut tx, lottery, state.clock.now()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(full.staff_view()))
}

/// The owner's compound and unit.
async fn owner_home(state: &AppState, owner: &Owner) -> Result<(Uuid, String), ApiError> {
    store::owner(&state.db, owner.tenant_id, owner.owner_id)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// A lottery of the owner's compound; any other is 404.
async fn owner_lottery(
    conn: &mut PgConnection,
    owner: &Owner,
    compound_id: Uuid,
    id: Uuid,
) -> Result<Lottery, ApiError> {
    store::lottery(&mut *conn, Some(owner.tenant_id), id)
        .await?
        .filter(|l| l.compound_id == compound_id)
        .ok_or(ApiError::NotFound("lottery"))
}

/// The lotteries of the owner's compound, with the owner's application, place and offer.
#[utoipa::path(tag = "owner", operation_id = "list_for_owner", security(("owner_token" = [])), responses((status = 200, description = "Done", body = Vec<OwnerLottery>)))]
#[get("/lotteries")]
async fn list_for_owner(
    state: web::Data<AppState>,
    owner: Owner,
) -> Result<HttpResponse, ApiError> {
    let (compound_id, _) = owner_home(&state, &owner).await?;
    let lotteries = store::of_compound(&state.db, owner.tenant_id, compound_id).await?;
    let mut tx = state.db.begin().await?;
    let mut views = Vec::with_capacity(lotteries.len());
    for lottery in lotteries {
        views.push(
            full(&mut tx, lottery, state.clock.now())
                .await?
                .owner_view(owner.owner_id),
        );
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Apply, once per household, while the window is open. A household without a space of its
/// own applies in tier 0, which draws first.
#[utoipa::path(tag = "owner", operation_id = "apply_to_lottery", security(("owner_token" = [])), responses((status = 201, description = "Created", body = Applied)))]
#[post("/lotteries/{id}/applications")]
async fn apply(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (compound_id, unit) = owner_home(&state, &owner).await?;
    let mut tx = state.db.begin().await?;
    let lottery = owner_lottery(&mut tx, &owner, compound_id, *id).await?;
    store::lock(&mut tx, lottery.id, false).await?;
    let now = state.clock.now();
    if now < lottery.applications_open_at {
        return Err(ApiError::conflict(
            ErrorCode::ApplicationsNotOpen,
            format!("applications open at {}", lottery.applications_open_at),
        ));
    }
    if now >= lottery.applications_close_at {
        return Err(closed(&lottery));
    }
    let tier = i16::from(store::holds_a_space(&mut *tx, owner.owner_id).await?);
    let application = store::apply(&mut *tx, &lottery, owner.owner_id, &unit, tier, now)
        .await
        .map_err(|e| {
            if is_unique_violation(&e, "lottery_applications_pkey") {
                ApiError::conflict(
                    ErrorCode::AlreadyApplied,
                    "this household has applied to this lottery already",
                )
            } else if matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some("P0002"))
            {
                closed(&lottery)
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(Applied {
        lottery_id: lottery.id,
        unit: application.unit,
        tier: application.tier,
        applied_at: application.applied_at,
    }))
}

fn closed(lottery: &Lottery) -> ApiError {
    ApiError::conflict(
        ErrorCode::ApplicationsClosed,
        format!("applications closed at {}", lottery.applications_close_at),
    )
}

async fn answer_offer(
    state: &AppState,
    owner: &Owner,
    id: Uuid,
    answer: &str,
    rent: Option<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let rent = match rent {
        Some(body) => Some((
            crate::validate::plate("plate", &body.plate)?,
            body.months.unwrap_or(1),
        )),
        None => None,
    };
    let (compound_id, _) = owner_home(state, owner).await?;
    let mut tx = state.db.begin().await?;
    // Locks in the order a rental takes them: the compound's announcements, then the lottery
    // (then the space's row, when the offer becomes a rental); the other way round, an accept
    // and the office contracting another winner deadlocked (issue 26's tester, round 2, N1).
    store::lock_compound(&mut tx, compound_id).await?;
    let lottery = owner_lottery(&mut tx, owner, compound_id, id).await?;
    let before = full(&mut tx, lottery, state.clock.now()).await?;
    let Some(offer) = before.offers.iter().find(|o| o.owner_id == owner.owner_id) else {
        return Err(ApiError::conflict(
            ErrorCode::NoOffer,
            "this household has no offer in this lottery",
        ));
    };
    match offer_state(offer, before.now) {
        OfferState::Open => {}
        OfferState::Lapsed => {
            return Err(ApiError::conflict(
                ErrorCode::OfferLapsed,
                format!(
                    "the offer lapsed at {}",
                    lapsed_at(offer, before.now).unwrap_or(offer.expires_at)
                ),
            ))
        }
        OfferState::Accepted | OfferState::Declined => {
            return Err(ApiError::conflict(
                ErrorCode::OfferAnswered,
                "the offer has been answered already",
            ))
        }
    }
    if !store::answer_offer(&mut *tx, id, owner.owner_id, answer, before.now).await? {
        return Err(ApiError::internal("an open offer could not be answered"));
    }
    // Accepted with a car: the offer becomes a rental of a won space, in the same transaction
    // (a rental refused leaves the offer open).
    let rental = match rent {
        Some((plate, months)) => {
            let (rental_id, rental) = crate::allocation::rentals::rent_won_space(
                &mut tx,
                state,
                owner.tenant_id,
                (before.lottery.compound_id, owner.owner_id),
                &before.lottery.space_ids,
                plate,
                months,
            )
            .await?;
            // Its hold running out unpaid lapses the offer (rentals::store::expire).
            store::set_offer_rental(&mut *tx, id, owner.owner_id, rental_id).await?;
            Some(rental)
        }
        None => None,
    };
    let after = full(&mut tx, before.lottery, state.clock.now()).await?;
    tx.commit().await?;
    let mut view = after.owner_view(owner.owner_id);
    view.rental = rental;
    Ok(HttpResponse::Ok().json(view))
}

/// Accepting with a car rents a won space at once.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    /// A vehicle registered to the household.
    plate: String,
    /// Whole months, 1 to 12 (1 if absent).
    months: Option<u32>,
}

/// Accept the household's open offer; with `{"plate", "months"?}`, rent a won space at once.
#[utoipa::path(tag = "owner", operation_id = "accept_offer", security(("owner_token" = [])), request_body(content = Option<AcceptBody>, description = "Optional: a car and months to rent the won space at once"), responses((status = 200, description = "Done", body = OwnerLottery)))]
#[post("/lotteries/{id}/offer/accept")]
async fn accept_offer(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    body: crate::input::MaybeJson<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    answer_offer(&state, &owner, *id, "accepted", body.0).await
}

/// Decline the household's open offer: it passes to the next applicant at once.
#[utoipa::path(tag = "owner", operation_id = "decline_offer", security(("owner_token" = [])), responses((status = 200, description = "Done", body = OwnerLottery)))]
#[post("/lotteries/{id}/offer/decline")]
async fn decline_offer(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer_offer(&state, &owner, *id, "declined", None).await
}

/// A lottery as published: commitment, window, applicants (units), and once drawn the seed,
/// the order and the offers. No login: the disclosure page links it.
#[utoipa::path(tag = "public", operation_id = "read_published", responses((status = 200, description = "Done", body = PublicLottery)))]
#[get("/v1/public/lotteries/{id}")]
async fn read_published(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state.db.begin().await?;
    let lottery = store::lottery(&mut *tx, None, *id)
        .await?
        .ok_or(ApiError::NotFound("lottery"))?;
    let full = full(&mut tx, lottery, state.clock.now()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(full.public_view()))
}

/// Draw a published lottery again (its `published` object) and say whether the commitment
/// and the order match. Needs nothing stored: any lottery's published data can be checked.
#[utoipa::path(tag = "public", operation_id = "verify_published", request_body(content = Published, description = "The `published` object of the lottery as `GET /v1/public/lotteries/{id}` answered it"), responses((status = 200, description = "Done", body = VerdictAnswer)))]
#[post("/v1/public/lotteries/verify")]
async fn verify_published(body: crate::input::Json<Published>) -> Result<HttpResponse, ApiError> {
    let verdict = lottery::verify(&body)
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidLottery, e.to_string()))?;
    Ok(HttpResponse::Ok().json(verdict_json(&verdict)?))
}

/// A verdict as the HTTP check and the CLI print it: its fields, and whether it `holds`.
fn verdict_json(verdict: &lottery::Verdict) -> Result<VerdictAnswer, ApiError> {
    Ok(VerdictAnswer {
        verdict: verdict.clone(),
        holds: verdict.holds(),
    })
}

/// `parkshare lottery-verify FILE`: the same check offline, on a published lottery saved
/// as JSON (`-` reads standard input). Prints the verdict; `Ok(false)` when it does not hold,
/// an error when the file cannot be read or is not a lottery that can be drawn.
pub fn verify_file(path: &str) -> anyhow::Result<bool> {
    use anyhow::Context;
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    };
    let value: serde_json::Value = serde_json::from_str(&text).context("parsing the JSON")?;
    // The public page's whole answer, or its `published` object alone.
    let published: Published = serde_json::from_value(
        value
            .get("published")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or(value),
    )
    .context("reading a published lottery (lottery_id, algorithm, commitment, seed, places, applicants, order)")?;
    let verdict = lottery::verify(&published)?;
    let json = verdict_json(&verdict).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(verdict.holds())
}
