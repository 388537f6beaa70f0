//! Whether a lottery is allotting a space, to whom, and the winner's offer becoming a rental:
//! what the lottery ([`super::lottery`]) and the rentals ([`super::rentals`]) both ask, below
//! both (the lottery rents a won space through the rentals; a rental checks the lottery here).
//!
//! An offer's state at an instant and the offers counted for [`lottery::course`] are the
//! lottery's rules; they are here so that "is this space still allotted" reads them as a view
//! of the lottery does.

use chrono::{DateTime, Utc};
use parkshare_allocation::lottery;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::lottery::store::{self, Offer};
use crate::error::{ApiError, ErrorCode};

/// The compound's announcement lock, and the record of the rental an accepted offer became
/// (the lottery's store).
pub use super::lottery::store::{lock_compound, set_offer_rental};

/// An offer's state at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferState {
    Open,
    Accepted,
    Declined,
    Lapsed,
}

pub fn offer_state(offer: &Offer, now: DateTime<Utc>) -> OfferState {
    match offer.answer.as_deref() {
        // Accepted with a car, but the rental's hold ran out unpaid.
        Some("accepted") if offer.lapsed_at.is_some() => OfferState::Lapsed,
        // Accepted without a car, and the office did not contract it in time.
        Some("accepted") if offer.contract_by.is_some_and(|by| by <= now) => OfferState::Lapsed,
        Some("accepted") => OfferState::Accepted,
        Some(_) => OfferState::Declined,
        None if offer.expires_at <= now => OfferState::Lapsed,
        None => OfferState::Open,
    }
}

/// The offers counted at `now`, for [`lottery::course`].
pub fn counts(offers: &[Offer], now: DateTime<Utc>) -> lottery::OfferCounts {
    let mut counts = lottery::OfferCounts {
        made: offers.len(),
        ..lottery::OfferCounts::default()
    };
    for offer in offers {
        match offer_state(offer, now) {
            OfferState::Open => counts.open += 1,
            OfferState::Accepted => {
                counts.taken += 1;
                counts.unpaid += usize::from(!offer.rental_paid);
            }
            OfferState::Declined | OfferState::Lapsed => {}
        }
    }
    counts
}

/// The oldest lottery of the compound still allotting one of `space_ids` at `now` (undrawn,
/// or drawn and not settled: [`lottery::course`]), with the space: while one does, the space is
/// had through that lottery only — not rented past it, not put in another. Offers are counted
/// as a read of the lottery would pass them on.
pub async fn allotting(
    conn: &mut PgConnection,
    compound_id: Uuid,
    space_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Uuid)>, ApiError> {
    for listed in store::lotteries_of_spaces(&mut *conn, compound_id, space_ids).await? {
        let course = match listed.drawn {
            None => lottery::Course::Undrawn,
            Some(applicants) => lottery::course(
                true,
                usize::try_from(listed.places).unwrap_or(0),
                usize::try_from(applicants).unwrap_or(0),
                counts(&store::offers(&mut *conn, listed.lottery_id).await?, now),
            ),
        };
        if course != lottery::Course::Settled {
            return Ok(Some((listed.space_id, listed.lottery_id)));
        }
    }
    Ok(None)
}

/// A space `lottery` is allotting, refused to whoever is not renting it through the lottery.
pub fn in_lottery(lottery: Uuid) -> ApiError {
    ApiError::conflict(
        ErrorCode::SpaceInLottery,
        format!(
            "this space is being allotted to owners by lottery {lottery}: it is rented through \
             the lottery's offers until they are settled"
        ),
    )
}

/// Checks that `owner_id` may rent a space of `lottery` past its hold: they accepted a place
/// without a car, it is not contracted yet and still may be at `now`. Under the lottery's
/// exclusive lock (two rentals cannot both take the one place). 409 `offer_answered` when
/// their place is contracted already, `space_in_lottery` when they have no such place.
pub async fn contract_winner(
    conn: &mut PgConnection,
    lottery: Uuid,
    owner_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    store::lock(&mut *conn, lottery, true).await?;
    let offers = store::offers(&mut *conn, lottery).await?;
    match offers.iter().find(|o| o.owner_id == owner_id) {
        Some(o) if offer_state(o, now) == OfferState::Accepted && o.contract_by.is_some() => Ok(()),
        Some(o) if offer_state(o, now) == OfferState::Accepted => Err(ApiError::conflict(
            ErrorCode::OfferAnswered,
            format!(
                "this household's place in lottery {lottery} is contracted already: its rental \
                 holds a space of the lottery"
            ),
        )),
        _ => Err(in_lottery(lottery)),
    }
}

/// [`allotting`] for one space, with the compound's announcements locked until the
/// transaction ends: a space checked here cannot be put in a lottery before the caller commits.
pub async fn running_lottery_of(
    conn: &mut PgConnection,
    compound_id: Uuid,
    space_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, ApiError> {
    store::lock_compound(conn, compound_id).await?;
    Ok(allotting(conn, compound_id, &[space_id], now)
        .await?
        .map(|(_, lottery)| lottery))
}
