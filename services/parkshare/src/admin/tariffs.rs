//! Price standards (the authority's figures) and filing tariffs (备案) against them.

use crate::error::ErrorCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use parkshare_tariff::regulated::{check_filing, Standard};
use parkshare_tariff::Tariff;
use serde::Deserialize;
use uuid::Uuid;

use super::compounds::owned_compound;
use super::lots::owned_lot;
use super::validate;
use crate::auth::Staff;
use crate::error::{is_unique_violation, ApiError};
use crate::state::AppState;
use crate::store::tariffs::{self, NewStandard, NewVersion};

/// A filing may take effect this much before "now" (clock skew between staff and server),
/// never earlier: filed tariffs do not reprice stays that have begun.
const EFFECTIVE_SKEW_S: i64 = 60;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_standard)
        .service(list_standards)
        .service(file_tariff)
        .service(list_tariffs);
}

#[derive(Deserialize, utoipa::ToSchema)]
struct StandardBody {
    name: String,
    document: String,
    space_kind: String,
    #[schema(value_type = Object)]
    standard: Standard,
}

/// Record a price authority's standard.
#[utoipa::path(tag = "staff", operation_id = "create_standard", security(("staff_token" = [])), request_body = StandardBody, responses((status = 201, description = "Created", body = tariffs::PriceStandard)))]
#[post("/compounds/{id}/price-standards")]
async fn create_standard(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<StandardBody>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    let name = validate::text("name", &body.name, 200)?;
    let document = validate::text("document", &body.document, 200)?;
    let space_kind = validate::space_kind("space_kind", &body.space_kind)?;
    body.standard
        .validate()
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidStandard, e))?;
    let new = NewStandard {
        name: &name,
        document: &document,
        space_kind,
        standard: &body.standard,
    };
    let standard = tariffs::insert_standard(&state.db, staff.tenant_id, compound.id, &new).await?;
    Ok(HttpResponse::Created().json(standard))
}

/// The price authority's standards recorded for the compound.
#[utoipa::path(tag = "staff", operation_id = "list_standards", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<tariffs::PriceStandard>)))]
#[get("/compounds/{id}/price-standards")]
async fn list_standards(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let compound = owned_compound(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(tariffs::standards(&state.db, staff.tenant_id, compound.id).await?))
}

/// Who set the price (rule 4 of the domain brief).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Basis {
    /// No owners' assembly decision yet: the authority's standard itself applies.
    AuthorityStandard,
    /// An owners' assembly resolution, by number and date.
    AssemblyResolution { number: String, date: NaiveDate },
    /// Agreed between the owners and the property firm.
    OwnersAgreement,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct FilingBody {
    /// The tariff to file (periods, caps, night rates).
    #[schema(value_type = Object)]
    tariff: Tariff,
    standard_id: Uuid,
    basis: Basis,
    effective_from: Option<DateTime<Utc>>,
    /// No longer accepted: filing proves every stay the tariff can bill, so there is no horizon
    /// for the filer to choose. Read only to refuse it by name (422 `horizon_days_removed`)
    /// rather than ignore it: a client that sends it believes it narrows or widens the check.
    #[schema(value_type = Option<i64>, deprecated)]
    horizon_days: Option<serde::de::IgnoredAny>,
}

/// Files a tariff for a lot: refused with the offending stay if any stay the tariff can bill
/// would be charged above the standard; otherwise a new immutable version with a filing number.
#[utoipa::path(tag = "staff", operation_id = "file_tariff", security(("staff_token" = [])), request_body = FilingBody, responses((status = 201, description = "Created", body = tariffs::TariffVersion), (status = 422, description = "Refused: the code says which rule, and the body may say more (e.g. the offending stay)", body = crate::error::ErrorBody)))]
#[post("/lots/{id}/tariffs")]
async fn file_tariff(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
    body: crate::input::Json<FilingBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let lot = owned_lot(&state, &staff, *id).await?;
    let compound = owned_compound(&state, &staff, lot.compound_id).await?;
    let standard = tariffs::standard(&state.db, staff.tenant_id, body.standard_id)
        .await?
        .filter(|s| s.compound_id == compound.id)
        .ok_or(ApiError::NotFound("price standard"))?;
    body.tariff
        .validate()
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidTariff, e.to_string()))?;
    let now = state.clock.now();
    let effective_from = body.effective_from.unwrap_or(now);
    if effective_from < now - Duration::seconds(EFFECTIVE_SKEW_S) {
        return Err(ApiError::invalid(
            ErrorCode::RetroactiveTariff,
            "effective_from must not be in the past",
        ));
    }
    if body.horizon_days.is_some() {
        return Err(ApiError::invalid(
            ErrorCode::HorizonDaysRemoved,
            "horizon_days is no longer accepted: filing checks every stay the tariff can bill \
             (every entry instant, every duration up to the longest billable stay); remove it",
        ));
    }
    let (basis, resolution_no, resolution_date) = match &body.basis {
        Basis::AuthorityStandard => ("authority_standard", None, None),
        Basis::AssemblyResolution { number, date } => (
            "assembly_resolution",
            Some(validate::text("basis.number", number, 100)?),
            Some(*date),
        ),
        Basis::OwnersAgreement => ("owners_agreement", None, None),
    };
    let tz = compound.zone()?;
    // The check walks hundreds of stays of days each (milliseconds, more for fine-grained
    // tariffs): keep it off the I/O threads.
    let (tariff, limits) = (body.tariff.clone(), standard.standard.clone());
    let checked = web::block(move || check_filing(&tariff, &limits, tz))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    if let Err(violation) = checked {
        return Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": {
                "code": ErrorCode::TariffExceedsCap,
                "message": format!("not filed: {violation}"),
                "violation": violation,
            }
        })));
    }
    let mut tx = state.db.begin().await?;
    let version = tariffs::next_version(&mut *tx, lot.id).await?;
    let filing_no = filing_no(effective_from, tz, lot.id, version);
    let new = NewVersion {
        lot_id: lot.id,
        version,
        tariff: &body.tariff,
        standard_id: standard.id,
        basis,
        resolution_no: resolution_no.as_deref(),
        resolution_date,
        filing_no: &filing_no,
        effective_from,
    };
    let filed = tariffs::insert_version(&mut *tx, staff.tenant_id, &new)
        .await
        .map_err(
            |e| match is_unique_violation(&e, "tariff_versions_lot_version_key") {
                true => ApiError::conflict(
                    ErrorCode::ConcurrentFiling,
                    "another filing for this lot was made at the same time; retry",
                ),
                false => e.into(),
            },
        )?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(filed))
}

/// `PS-<local date it takes effect>-<first 8 hex of the lot>-V<version>`: unique per lot and
/// version, and readable on a price board.
pub(crate) fn filing_no(
    effective_from: DateTime<Utc>,
    tz: chrono_tz::Tz,
    lot_id: Uuid,
    version: i32,
) -> String {
    let local_date = effective_from.with_timezone(&tz).format("%Y%m%d");
    let lot_code = lot_id.simple().to_string()[..8].to_uppercase();
    format!("PS-{local_date}-{lot_code}-V{version}")
}

/// The lot's filed tariff versions.
#[utoipa::path(tag = "staff", operation_id = "list_tariffs", security(("staff_token" = [])), responses((status = 200, description = "Done", body = Vec<tariffs::TariffVersion>)))]
#[get("/lots/{id}/tariffs")]
async fn list_tariffs(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lot = owned_lot(&state, &staff, *id).await?;
    Ok(HttpResponse::Ok().json(tariffs::versions(&state.db, staff.tenant_id, lot.id).await?))
}
