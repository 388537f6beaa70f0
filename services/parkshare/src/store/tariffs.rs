//! Price standards and filed tariff versions.

use chrono::{DateTime, NaiveDate, Utc};
use parkshare_tariff::regulated::Standard;
use parkshare_tariff::Tariff;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::PgExecutor;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A price authority's standard recorded for a compound.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PriceStandard {
    pub id: Uuid,
    pub compound_id: Uuid,
    pub name: String,
    pub document: String,
    pub space_kind: String,
    /// The base price with its float range, or the maximum price (the filed object).
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub standard: Standard,
    pub created_at: DateTime<Utc>,
}

const STANDARD_COLUMNS: &str = "id, compound_id, name, document, space_kind, standard, created_at";

pub struct NewStandard<'a> {
    pub name: &'a str,
    pub document: &'a str,
    pub space_kind: &'a str,
    pub standard: &'a Standard,
}

pub async fn insert_standard(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
    s: &NewStandard<'_>,
) -> sqlx::Result<PriceStandard> {
    sqlx::query_as(&format!(
        "insert into price_standards (id, tenant_id, compound_id, name, document, space_kind, standard)
         values ($1, $2, $3, $4, $5, $6, $7) returning {STANDARD_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(compound_id)
    .bind(s.name)
    .bind(s.document)
    .bind(s.space_kind)
    .bind(Json(s.standard))
    .fetch_one(db)
    .await
}

pub async fn standards(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<Vec<PriceStandard>> {
    sqlx::query_as(&format!(
        "select {STANDARD_COLUMNS} from price_standards where tenant_id = $1 and compound_id = $2 order by created_at"
    ))
    .bind(tenant_id)
    .bind(compound_id)
    .fetch_all(db)
    .await
}

pub async fn standard(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<PriceStandard>> {
    sqlx::query_as(&format!(
        "select {STANDARD_COLUMNS} from price_standards where tenant_id = $1 and id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A filed, immutable version of a lot's tariff.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TariffVersion {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub version: i32,
    /// The tariff as filed (periods, caps, night rates).
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub tariff: Tariff,
    pub standard_id: Uuid,
    pub basis: String,
    pub resolution_no: Option<String>,
    pub resolution_date: Option<NaiveDate>,
    pub filing_no: String,
    pub effective_from: DateTime<Utc>,
    pub filed_at: DateTime<Utc>,
}

const VERSION_COLUMNS: &str =
    "id, lot_id, version, tariff, standard_id, basis, resolution_no, resolution_date,
    filing_no, effective_from, filed_at";

pub struct NewVersion<'a> {
    pub lot_id: Uuid,
    pub version: i32,
    pub tariff: &'a Tariff,
    pub standard_id: Uuid,
    pub basis: &'a str,
    pub resolution_no: Option<&'a str>,
    pub resolution_date: Option<NaiveDate>,
    pub filing_no: &'a str,
    pub effective_from: DateTime<Utc>,
}

pub async fn next_version(db: impl PgExecutor<'_>, lot_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "select coalesce(max(version), 0) + 1 from tariff_versions where lot_id = $1",
    )
    .bind(lot_id)
    .fetch_one(db)
    .await
}

pub async fn insert_version(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    v: &NewVersion<'_>,
) -> sqlx::Result<TariffVersion> {
    sqlx::query_as(&format!(
        "insert into tariff_versions (id, tenant_id, lot_id, version, tariff, standard_id, basis, resolution_no,
                                      resolution_date, filing_no, effective_from)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning {VERSION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(v.lot_id)
    .bind(v.version)
    .bind(Json(v.tariff))
    .bind(v.standard_id)
    .bind(v.basis)
    .bind(v.resolution_no)
    .bind(v.resolution_date)
    .bind(v.filing_no)
    .bind(v.effective_from)
    .fetch_one(db)
    .await
}

pub async fn versions(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    lot_id: Uuid,
) -> sqlx::Result<Vec<TariffVersion>> {
    sqlx::query_as(&format!(
        "select {VERSION_COLUMNS} from tariff_versions where tenant_id = $1 and lot_id = $2 order by version"
    ))
    .bind(tenant_id)
    .bind(lot_id)
    .fetch_all(db)
    .await
}

/// The one rule of "the tariff version of lot `lot` in force at `at`" (SQL expressions: a
/// parameter or a column): of the lot's filed versions, the one that took effect last at or
/// before `at`; of two taking effect at the same instant, the one filed later (the higher
/// version). The query of that version's id, for use on its own or as a scalar subquery: the
/// gate's plate facts, [`version_id_in_force`] and [`filed_in_force`] (billing, quotes, the
/// price board, rentals) all read it, and tests/api/tariffs.rs pins them to it. Its alias
/// (`tvf`) must not be used by the statement it is put in.
pub fn version_in_force_sql(lot: &str, at: &str) -> String {
    format!(
        "select tvf.id from tariff_versions tvf where tvf.lot_id = {lot} and tvf.effective_from <= {at}
          order by tvf.effective_from desc, tvf.version desc limit 1"
    )
}

/// The id of the version in force at `at` ([`version_in_force_sql`]).
pub async fn version_id_in_force(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| version_in_force_sql("$1", "$2"));
    sqlx::query_scalar(&SQL)
        .bind(lot_id)
        .bind(at)
        .fetch_optional(db)
        .await
}

/// A filed version with the standard it was filed against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FiledTariff {
    pub version_id: Uuid,
    pub version: i32,
    pub filing_no: String,
    pub effective_from: DateTime<Utc>,
    pub basis: String,
    pub resolution_no: Option<String>,
    pub resolution_date: Option<NaiveDate>,
    #[sqlx(json)]
    pub tariff: Tariff,
    pub standard_name: String,
    pub standard_document: String,
    #[sqlx(json)]
    pub standard: Standard,
}

const FILED_SELECT: &str =
    "select tv.id as version_id, tv.version, tv.filing_no, tv.effective_from, tv.basis,
        tv.resolution_no, tv.resolution_date, tv.tariff, ps.name as standard_name,
        ps.document as standard_document, ps.standard
   from tariff_versions tv join price_standards ps on ps.id = tv.standard_id";

/// Filed versions by id. Tariff versions and price standards are immutable once written (the
/// database refuses changes), so a version read once is kept for the life of the process: the
/// exit path prices every stay by its version. Shared, not copied: a hit allocates nothing.
static FILED: std::sync::LazyLock<std::sync::RwLock<HashMap<Uuid, Arc<FiledTariff>>>> =
    std::sync::LazyLock::new(Default::default);

pub async fn filed(
    db: impl PgExecutor<'_>,
    version_id: Uuid,
) -> sqlx::Result<Option<Arc<FiledTariff>>> {
    if let Some(filed) = FILED.read().ok().and_then(|m| m.get(&version_id).cloned()) {
        return Ok(Some(filed));
    }
    let filed: Option<FiledTariff> = sqlx::query_as(&format!("{FILED_SELECT} where tv.id = $1"))
        .bind(version_id)
        .fetch_optional(db)
        .await?;
    let filed = filed.map(Arc::new);
    if let (Some(filed), Ok(mut cache)) = (&filed, FILED.write()) {
        cache.insert(version_id, filed.clone());
    }
    Ok(filed)
}

/// The version in force at `at` ([`version_in_force_sql`]) with its standard.
pub async fn filed_in_force(
    db: impl PgExecutor<'_>,
    lot_id: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<FiledTariff>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{FILED_SELECT} where tv.id = ({})",
            version_in_force_sql("$1", "$2")
        )
    });
    sqlx::query_as(&SQL)
        .bind(lot_id)
        .bind(at)
        .fetch_optional(db)
        .await
}
