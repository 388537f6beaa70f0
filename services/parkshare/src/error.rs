//! The one API error type. 4xx bodies carry a stable `code` and a human `message`; 5xx bodies
//! are opaque and the cause chain is logged instead.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String },
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// Over an abuse limit: 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        code: ErrorCode,
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("a backing service is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Defines [`ErrorCode`]: each variant with the code clients see.
macro_rules! error_codes {
    ($($variant:ident = $code:literal,)*) => {
        /// Every code an error answer can carry, in one place: clients match on these, so a
        /// code once published is never renamed (the OpenAPI document lists them all).
        /// (Each code is its variant's name in snake_case; a unit test holds `as_str` to it.)
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    AlreadyApplied = "already_applied",
    AlreadyPaidBack = "already_paid_back",
    AlreadyRenewed = "already_renewed",
    AlreadyWaiting = "already_waiting",
    AmountExceedsDue = "amount_exceeds_due",
    AmountNotPrice = "amount_not_price",
    ApplicationsClosed = "applications_closed",
    ApplicationsNotOpen = "applications_not_open",
    ApplicationsStillOpen = "applications_still_open",
    BackendUnavailable = "backend_unavailable",
    BadSignature = "bad_signature",
    BarrierUnreachable = "barrier_unreachable",
    BodyTooLarge = "body_too_large",
    BookingCompleted = "booking_completed",
    BookingExpired = "booking_expired",
    BookingInThePast = "booking_in_the_past",
    BookingInUse = "booking_in_use",
    BookingTooFarAhead = "booking_too_far_ahead",
    BookingTooLong = "booking_too_long",
    BookingTooShort = "booking_too_short",
    CaptureTimeInFuture = "capture_time_in_future",
    CaptureTimeTooOld = "capture_time_too_old",
    ClientBookingLimit = "client_booking_limit",
    CompoundExists = "compound_exists",
    ConcurrentFiling = "concurrent_filing",
    ConcurrentIntent = "concurrent_intent",
    CredentialRevoked = "credential_revoked",
    DeviceEventIdReused = "device_event_id_reused",
    DeviceLoginRequired = "device_login_required",
    DeviceMismatch = "device_mismatch",
    DeviceSerialTaken = "device_serial_taken",
    DuplicateSpace = "duplicate_space",
    EmptyBooking = "empty_booking",
    EmptyPeriod = "empty_period",
    EmptyRange = "empty_range",
    ForSaleSinceInFuture = "for_sale_since_in_future",
    ForSaleSinceMovedLater = "for_sale_since_moved_later",
    GateExists = "gate_exists",
    GateNotPermitted = "gate_not_permitted",
    HoldExpired = "hold_expired",
    HorizonDaysRemoved = "horizon_days_removed",
    IdempotencyKeyReused = "idempotency_key_reused",
    ImplausibleForSaleSince = "implausible_for_sale_since",
    ImportRejected = "import_rejected",
    Internal = "internal",
    InvalidAmount = "invalid_amount",
    InvalidBody = "invalid_body",
    InvalidCsv = "invalid_csv",
    InvalidCursor = "invalid_cursor",
    InvalidDeviceEventId = "invalid_device_event_id",
    InvalidExceptionKind = "invalid_exception_kind",
    InvalidField = "invalid_field",
    InvalidLastDay = "invalid_last_day",
    InvalidLimit = "invalid_limit",
    InvalidLottery = "invalid_lottery",
    InvalidMonth = "invalid_month",
    InvalidMonths = "invalid_months",
    InvalidOffer = "invalid_offer",
    InvalidOfferMinutes = "invalid_offer_minutes",
    InvalidOrder = "invalid_order",
    InvalidPeriod = "invalid_period",
    InvalidPolicy = "invalid_policy",
    InvalidPricePct = "invalid_price_pct",
    InvalidQuery = "invalid_query",
    InvalidQuotedAt = "invalid_quoted_at",
    InvalidRange = "invalid_range",
    InvalidRenter = "invalid_renter",
    InvalidSettlementFile = "invalid_settlement_file",
    InvalidSpaceKind = "invalid_space_kind",
    InvalidSpaces = "invalid_spaces",
    InvalidStandard = "invalid_standard",
    InvalidStatus = "invalid_status",
    InvalidTarget = "invalid_target",
    InvalidTariff = "invalid_tariff",
    InvalidText = "invalid_text",
    InvalidTime = "invalid_time",
    InvalidTitle = "invalid_title",
    InvalidValidity = "invalid_validity",
    InvalidWebhookUrl = "invalid_webhook_url",
    InvalidWeekdays = "invalid_weekdays",
    LotExists = "lot_exists",
    MalformedPlate = "malformed_plate",
    MalformedPush = "malformed_push",
    MissingColumns = "missing_columns",
    NoCompound = "no_compound",
    NoFiledTariff = "no_filed_tariff",
    NoMonthlyPrice = "no_monthly_price",
    NoOffer = "no_offer",
    NoPassPlaces = "no_pass_places",
    NoSpaceAvailable = "no_space_available",
    NoSpaceLeft = "no_space_left",
    NotAwaitingPayment = "not_awaiting_payment",
    NotDeveloperUnsold = "not_developer_unsold",
    NotFound = "not_found",
    NotInForce = "not_in_force",
    NotRefundable = "not_refundable",
    NotRenewable = "not_renewable",
    NotTheSpaceOwner = "not_the_space_owner",
    NotYourVehicle = "not_your_vehicle",
    NoteRequired = "note_required",
    NothingDue = "nothing_due",
    NothingToCharge = "nothing_to_charge",
    OfferAnswered = "offer_answered",
    OfferLapsed = "offer_lapsed",
    OpeningInThePast = "opening_in_the_past",
    OwnSpace = "own_space",
    OwnedSpaceThroughStaff = "owned_space_through_staff",
    OwnerConsentRequired = "owner_consent_required",
    OwnerExists = "owner_exists",
    OwnerNotAllowed = "owner_not_allowed",
    OwnerRequired = "owner_required",
    OwnersAhead = "owners_ahead",
    OwnersWaiting = "owners_waiting",
    PassPlacesBelowSold = "pass_places_below_sold",
    PassesSoldOut = "passes_sold_out",
    PeriodAlreadyClosed = "period_already_closed",
    PeriodNotOver = "period_not_over",
    PlateAlreadyBooked = "plate_already_booked",
    PlateBookingLimit = "plate_booking_limit",
    PlateHasRental = "plate_has_rental",
    PlateOfAnOwner = "plate_of_an_owner",
    PolicyExists = "policy_exists",
    RangeTooLong = "range_too_long",
    RateLimited = "rate_limited",
    ReferenceAlreadyUsed = "reference_already_used",
    RefundExceedsPayment = "refund_exceeds_payment",
    Renewed = "renewed",
    RentalLapsed = "rental_lapsed",
    RetroactivePolicy = "retroactive_policy",
    RetroactiveTariff = "retroactive_tariff",
    SettlementFileRejected = "settlement_file_rejected",
    SpaceExists = "space_exists",
    SpaceInAnotherLottery = "space_in_another_lottery",
    SpaceInLottery = "space_in_lottery",
    SpaceLetMonthly = "space_let_monthly",
    SpaceMetered = "space_metered",
    SpaceNotAllottable = "space_not_allottable",
    SpaceNotAvailable = "space_not_available",
    SpaceRented = "space_rented",
    SpaceShared = "space_shared",
    StartInPast = "start_in_past",
    StartTooFar = "start_too_far",
    StayNotBillable = "stay_not_billable",
    TariffAmbiguous = "tariff_ambiguous",
    TariffExceedsCap = "tariff_exceeds_cap",
    TariffRequired = "tariff_required",
    TimeZoneRequired = "time_zone_required",
    TooManyRows = "too_many_rows",
    TooManyWindows = "too_many_windows",
    Unauthenticated = "unauthenticated",
    Unavailable = "unavailable",
    UnknownAccountKind = "unknown_account_kind",
    UnknownDevice = "unknown_device",
    UnknownPlateColour = "unknown_plate_colour",
    UnknownProvider = "unknown_provider",
    UnknownReason = "unknown_reason",
    UnknownVehicleClass = "unknown_vehicle_class",
    UnknownVendor = "unknown_vendor",
    VehicleExists = "vehicle_exists",
    VendorMismatch = "vendor_mismatch",
    WindowEmpty = "window_empty",
    WindowHasBookings = "window_has_bookings",
    WindowTooLong = "window_too_long",
    WindowTooShort = "window_too_short",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&parkshare_sharing::BookingError> for ErrorCode {
    fn from(e: &parkshare_sharing::BookingError) -> ErrorCode {
        use parkshare_sharing::BookingError as E;
        match e {
            E::Empty => ErrorCode::EmptyBooking,
            E::TooShort => ErrorCode::BookingTooShort,
            E::TooLong => ErrorCode::BookingTooLong,
            E::InThePast => ErrorCode::BookingInThePast,
            E::TooFarAhead => ErrorCode::BookingTooFarAhead,
        }
    }
}

impl From<&parkshare_allocation::rental::Refusal> for ErrorCode {
    fn from(e: &parkshare_allocation::rental::Refusal) -> ErrorCode {
        use parkshare_allocation::rental::Refusal as R;
        match e {
            R::OwnersWaiting { .. } => ErrorCode::OwnersWaiting,
            R::OwnersAhead { .. } => ErrorCode::OwnersAhead,
        }
    }
}

impl From<&parkshare_sharing::CapExceeded> for ErrorCode {
    fn from(e: &parkshare_sharing::CapExceeded) -> ErrorCode {
        match e {
            parkshare_sharing::CapExceeded::Plate { .. } => ErrorCode::PlateBookingLimit,
            parkshare_sharing::CapExceeded::Client { .. } => ErrorCode::ClientBookingLimit,
        }
    }
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "lot not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to act on, and a message for people.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    /// A fault of ours (a broken invariant, data that should not exist): 500, its cause logged,
    /// never shown.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(anyhow::anyhow!("{cause}"))
    }

    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn rate_limited(
        code: ErrorCode,
        message: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> ApiError {
        ApiError::TooManyRequests {
            code,
            message: message.into(),
            retry_after,
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Whether this is a Postgres conflict (a deadlock, a serialization failure, a second car
    /// on a space) that running the transaction again may resolve.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(is_retryable),
            _ => false,
        }
    }

    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::Forbidden { code, .. }
            | ApiError::BadRequest { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooManyRequests { code, .. } => *code,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, code = self.code(), "request failed");
                match self {
                    ApiError::Unavailable(_) => "service temporarily unavailable, retry".to_owned(),
                    _ => "internal error".to_owned(),
                }
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            // Whole seconds, rounded up: retrying at the time said must pass.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header(("Retry-After", seconds.max(1).to_string()));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.error_code(),
                message,
            },
        })
    }
}

/// SQLSTATEs of a connection Postgres ended or refused: a connection exception (class 08), or
/// the server shutting down, crashed or still starting (57P01–57P03). Nothing was decided;
/// the caller may retry.
fn connection_lost(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLSTATEs of text Postgres cannot store (NUL, or a character the encoding lacks): input
/// that slipped past [`crate::input`] — a client's mistake, not the service's.
fn unstorable_text(code: &str) -> bool {
    matches!(code, "22021" | "22P05")
}

/// SQLSTATEs of a transaction Postgres aborted to break a deadlock or a serialization
/// conflict: nothing of it was committed, and running it again may well succeed.
fn conflict_aborted(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// The one-space-one-car index: a car was placed on a space another car still stands on.
/// Nothing was committed; deciding again sees the car and moves on.
pub const ONE_CAR_PER_SPACE: &str = "sessions_one_car_per_space";

/// Whether the transaction that failed with `e` was aborted by a conflict with a concurrent
/// one, so that running it again is the remedy (bounded: see `gate::decide::decide`).
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref().is_some_and(conflict_aborted)
                || db.constraint() == Some(ONE_CAR_PER_SPACE)
        }
        _ => false,
    }
}

/// Whether `e` means Postgres could not be reached or ended the connection: nothing was
/// decided, and the caller may retry (or fall back, as the credential cache does).
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(connection_lost),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        if let sqlx::Error::Database(ref db) = e {
            if db.code().as_deref().is_some_and(unstorable_text) {
                tracing::warn!(error = %e, "text Postgres cannot store reached a statement");
                return ApiError::invalid(
                    ErrorCode::InvalidText,
                    "a text field holds a character that cannot be stored (such as NUL)",
                );
            }
        }
        crate::metrics::backend_error("postgres");
        // A conflict Postgres aborted decided nothing either: 503, retry.
        if is_outage(&e) || is_retryable(&e) {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> ApiError {
        crate::metrics::backend_error("redis");
        ApiError::Unavailable(e.into())
    }
}

/// True when `e` is a violation of the named unique or exclusion constraint.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => db.constraint() == Some(constraint),
        _ => false,
    }
}

/// Turns actix's JSON, path and query extraction failures into our error body.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    let message = match &err {
        actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
        | actix_web::error::JsonPayloadError::Overflow { .. } => {
            "request body too large".to_owned()
        }
        actix_web::error::JsonPayloadError::Deserialize(e) => body_message(e),
        other => other.to_string(),
    };
    ApiError::bad_request(ErrorCode::InvalidBody, message).into()
}

/// What is wrong with a JSON body, in words that stay the same wherever in the body it is:
/// no line and column, no name of a type of ours (issue 20's tester, F7).
fn body_message(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => "the body is not valid JSON".to_owned(),
        Category::Io => "the body could not be read".to_owned(),
        Category::Data => {
            let text = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let text = text.strip_suffix(&position).unwrap_or(&text);
            if text.contains("struct ") || text.contains("map") {
                "the body must be a JSON object with the documented fields".to_owned()
            } else {
                text.to_owned()
            }
        }
    }
}

/// A path segment that does not parse (e.g. a malformed id) names nothing that exists.
pub fn path_error(_: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::NotFound("resource").into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidQuery, err.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// A body's fault is told without its position or our types' names.
    #[test]
    fn a_bad_body_is_told_in_stable_words() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct GateEventRequest {
            plate: String,
            gate_id: uuid::Uuid,
        }
        let told = |body: &str| match serde_json::from_str::<GateEventRequest>(body) {
            Ok(read) => panic!("{body} parsed: {read:?}"),
            Err(e) => super::body_message(&e),
        };
        assert_eq!(told("{\"gate_id\": "), "the body is not valid JSON");
        assert_eq!(
            told("[]"),
            "the body must be a JSON object with the documented fields"
        );
        assert_eq!(
            told("{\"gate_id\": \"00000000-0000-0000-0000-000000000000\"}"),
            "missing field `plate`"
        );
        assert_eq!(
            told("{\n\n   \"gate_id\": \"00000000-0000-0000-0000-000000000000\"}"),
            "missing field `plate`",
            "wherever the fault is"
        );
    }

    #[test]
    fn every_code_is_sent_as_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::from(code.as_str())),
                "{code:?}"
            );
        }
    }
}
