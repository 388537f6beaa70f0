//! Share links, committee and supervisor credentials, and the figures of a disclosure.

use chrono::{DateTime, Utc};
use parkshare_domain::usage::Stay;
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Answers the new link's id.
pub async fn insert_link(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
    tenant_id: Uuid,
    compound_id: Uuid,
    label: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into disclosure_links (token_sha256, tenant_id, compound_id, label)
         values ($1, $2, $3, $4) returning id",
    )
    .bind(token_sha256)
    .bind(tenant_id)
    .bind(compound_id)
    .bind(label)
    .fetch_one(db)
    .await
}

/// `(tenant_id, compound_id)` a live share link opens.
pub async fn link(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as("select tenant_id, compound_id from disclosure_links where token_sha256 = $1 and revoked_at is null")
        .bind(token_sha256)
        .fetch_optional(db)
        .await
}

pub async fn insert_committee_token(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
    tenant_id: Uuid,
    compound_id: Uuid,
    label: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("insert into committee_tokens (token_sha256, tenant_id, compound_id, label) values ($1, $2, $3, $4) returning id")
        .bind(token_sha256)
        .bind(tenant_id)
        .bind(compound_id)
        .bind(label)
        .fetch_one(db)
        .await
}

/// `(tenant_id, compound_id)` of a live committee token.
pub async fn committee(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    sqlx::query_as("select tenant_id, compound_id from committee_tokens where token_sha256 = $1 and revoked_at is null")
        .bind(token_sha256)
        .fetch_optional(db)
        .await
}

pub async fn insert_supervisor(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: &str,
    area: &str,
    token_sha256: &[u8],
) -> sqlx::Result<()> {
    sqlx::query("insert into supervisors (id, name, area, token_sha256) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(area)
        .bind(token_sha256)
        .execute(db)
        .await
        .map(drop)
}

pub async fn supervisor_by_token(
    db: impl PgExecutor<'_>,
    token_sha256: &[u8],
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from supervisors where token_sha256 = $1 and token_revoked_at is null",
    )
    .bind(token_sha256)
    .fetch_optional(db)
    .await
}

/// Puts a compound under a supervisor; false when either does not exist.
pub async fn assign(
    db: impl PgExecutor<'_>,
    supervisor_id: Uuid,
    compound_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query("update compounds set supervisor_id = $1 where id = $2 and exists (select 1 from supervisors where id = $1)")
        .bind(supervisor_id)
        .bind(compound_id)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// `(compound_id, tenant_id, name)` of the supervisor's compounds.
pub async fn supervised(
    db: impl PgExecutor<'_>,
    supervisor_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "select id, tenant_id, name from compounds where supervisor_id = $1 order by name",
    )
    .bind(supervisor_id)
    .fetch_all(db)
    .await
}

/// How many stays of a kind.
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

/// Stays of the compound that were on during `[from, until)` (began before its end and had not
/// left before its start), by their kind or by the kind of space (`coalesce(space kind, pool)`).
pub async fn sessions_by(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    by_space: bool,
) -> sqlx::Result<Vec<Count>> {
    let key = if by_space {
        "coalesce(sp.kind, s.pool)"
    } else {
        "s.kind"
    };
    sqlx::query_as(&format!(
        "select {key} as key, count(*) as count from sessions s left join spaces sp on sp.id = s.space_id
          where s.compound_id = $1 and s.entered_at < $3 and coalesce(s.exited_at, 'infinity'::timestamptz) >= $2
          group by 1 order by 1"
    ))
    .bind(compound_id)
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await
}

/// The compound's stays that were inside during `[from, until)`, for the chart of cars inside
/// by hour (`parkshare_domain::usage`): those with an exit after `from`, and those still
/// inside. A stay closed without an exit read (`missed_exit`: the car was read at an entry
/// again) has no time it left, so no time inside can be stated for it; it is left out here
/// (it still counts as a stay in `sessions_by`). So is one opened at an exit with no entry
/// record: it has no time it came.
pub async fn stays_between(
    db: impl PgExecutor<'_>,
    compound_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<Vec<Stay>> {
    let rows: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select entered_at, exited_at from sessions
          where compound_id = $1 and entered_at < $3
            and (exited_at > $2 or (exited_at is null and status = 'open'))",
    )
    .bind(compound_id)
    .bind(from)
    .bind(until)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entered_at, exited_at)| Stay {
            entered_at,
            exited_at,
        })
        .collect())
}
