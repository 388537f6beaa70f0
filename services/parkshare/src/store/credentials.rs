//! Credentials as things to list, revoke and rotate, whatever their table, and the audit of
//! who issued, revoked or rotated which (migration 0019).
//!
//! Two shapes: tokens kept one per row (staff, owners, committees, share links) are revoked
//! by stamping the row and rotated by inserting a successor row; secrets kept one per object
//! (a gate's device secret, a supervisor's or a booking's token) are revoked by stamping the
//! object and rotated by replacing the digest in place.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// What kind of credential, as the audit and the API name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Staff,
    Owner,
    Committee,
    DisclosureLink,
    Device,
    Supervisor,
    Booking,
}

/// Where a kind of credential is stored. Every name is a constant of this module: the
/// statements below are built from them, never from input.
struct Shape {
    table: &'static str,
    digest: &'static str,
    revoked_at: &'static str,
    /// The column naming the firm; `None`: the platform's own (supervisors).
    tenant: Option<&'static str>,
    /// The column naming the object the API reaches the credential through (an owner, a
    /// compound), if any beyond the firm.
    parent: Option<&'static str>,
    /// Tokens kept one per row: the columns a successor copies. `None`: one per object.
    copied: Option<&'static str>,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Staff => "staff",
            Kind::Owner => "owner",
            Kind::Committee => "committee",
            Kind::DisclosureLink => "disclosure_link",
            Kind::Device => "device",
            Kind::Supervisor => "supervisor",
            Kind::Booking => "booking",
        }
    }

    /// What a missing credential of this kind is called in a 404.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Staff | Kind::Owner | Kind::Committee => "token",
            Kind::DisclosureLink => "disclosure link",
            Kind::Device => "gate",
            Kind::Supervisor => "supervisor",
            Kind::Booking => "booking",
        }
    }

    /// Kept one per row: a rotation makes a new credential (a new id).
    pub fn one_per_row(self) -> bool {
        self.shape().copied.is_some()
    }

    fn shape(self) -> Shape {
        let row = |table, parent, copied| Shape {
            table,
            digest: "token_sha256",
            revoked_at: "revoked_at",
            tenant: Some("tenant_id"),
            parent,
            copied: Some(copied),
        };
        match self {
            Kind::Staff => row("staff_tokens", None, "tenant_id, label"),
            Kind::Owner => row(
                "owner_tokens",
                Some("owner_id"),
                "tenant_id, owner_id, label",
            ),
            Kind::Committee => row(
                "committee_tokens",
                Some("compound_id"),
                "tenant_id, compound_id, label",
            ),
            Kind::DisclosureLink => row(
                "disclosure_links",
                Some("compound_id"),
                "tenant_id, compound_id, label",
            ),
            Kind::Device => Shape {
                table: "gates",
                digest: "secret_sha256",
                revoked_at: "secret_revoked_at",
                tenant: Some("tenant_id"),
                parent: None,
                copied: None,
            },
            Kind::Supervisor => Shape {
                table: "supervisors",
                digest: "token_sha256",
                revoked_at: "token_revoked_at",
                tenant: None,
                parent: None,
                copied: None,
            },
            Kind::Booking => Shape {
                table: "bookings",
                digest: "token_sha256",
                revoked_at: "token_revoked_at",
                tenant: Some("tenant_id"),
                parent: None,
                copied: None,
            },
        }
    }
}

/// A credential as the caller may reach it: its id, and the firm and parent object it must
/// belong to (`None`: any). Another firm's credential is not found.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub kind: Kind,
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub parent: Option<Uuid>,
}

impl Target {
    /// `where` over `$1` (id), `$2` (firm or null), `$3` (parent or null).
    fn filter(&self) -> String {
        let shape = self.kind.shape();
        let tenant = shape.tenant.map_or("$2::uuid is null".to_owned(), |c| {
            format!("($2::uuid is null or {c} = $2)")
        });
        let parent = shape.parent.map_or("$3::uuid is null".to_owned(), |c| {
            format!("($3::uuid is null or {c} = $3)")
        });
        format!("id = $1 and {tenant} and {parent}")
    }
}

/// The firm a credential belongs to and when it was revoked, if it was.
#[derive(Debug, sqlx::FromRow)]
pub struct Standing {
    pub tenant_id: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The credential's standing, its row locked until the transaction ends; `None` when there is
/// no such credential within the target's firm and parent.
pub async fn lock(db: impl PgExecutor<'_>, target: &Target) -> sqlx::Result<Option<Standing>> {
    let shape = target.kind.shape();
    let tenant = shape.tenant.unwrap_or("null::uuid");
    sqlx::query_as(&format!(
        "select {tenant} as tenant_id, {revoked} as revoked_at from {table} where {filter} for update",
        revoked = shape.revoked_at,
        table = shape.table,
        filter = target.filter(),
    ))
    .bind(target.id)
    .bind(target.tenant_id)
    .bind(target.parent)
    .fetch_optional(db)
    .await
}

/// Stamps the credential revoked now; answers when.
pub async fn revoke(db: impl PgExecutor<'_>, kind: Kind, id: Uuid) -> sqlx::Result<DateTime<Utc>> {
    let shape = kind.shape();
    sqlx::query_scalar(&format!(
        "update {table} set {revoked} = now() where id = $1 returning {revoked}",
        table = shape.table,
        revoked = shape.revoked_at,
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// A token kept one per row: a new row `new_id` with this digest, for the same firm, parent
/// and label as `old_id`.
pub async fn insert_successor(
    db: impl PgExecutor<'_>,
    kind: Kind,
    old_id: Uuid,
    new_id: Uuid,
    digest: &[u8],
) -> sqlx::Result<()> {
    let shape = kind.shape();
    let Some(copied) = shape.copied else {
        return Err(sqlx::Error::Protocol(format!(
            "{} credentials are not kept one per row",
            kind.as_str()
        )));
    };
    sqlx::query(&format!(
        "insert into {table} (id, {digest_column}, {copied}) select $2, $3, {copied} from {table} where id = $1",
        table = shape.table,
        digest_column = shape.digest,
    ))
    .bind(old_id)
    .bind(new_id)
    .bind(digest)
    .execute(db)
    .await
    .map(drop)
}

/// A secret kept one per object: replaced by this digest, and live again.
pub async fn replace_secret(
    db: impl PgExecutor<'_>,
    kind: Kind,
    id: Uuid,
    digest: &[u8],
) -> sqlx::Result<()> {
    let shape = kind.shape();
    sqlx::query(&format!(
        "update {table} set {digest_column} = $2, {revoked} = null where id = $1",
        table = shape.table,
        digest_column = shape.digest,
        revoked = shape.revoked_at,
    ))
    .bind(id)
    .bind(digest)
    .execute(db)
    .await
    .map(drop)
}

/// A token kept one per row, as listed: never its secret nor its digest.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Token {
    pub id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The tokens (kept one per row) of a firm and parent, oldest first.
pub async fn tokens(
    db: impl PgExecutor<'_>,
    kind: Kind,
    tenant_id: Uuid,
    parent: Option<Uuid>,
) -> sqlx::Result<Vec<Token>> {
    let shape = kind.shape();
    let parent_filter = shape
        .parent
        .map_or("$2::uuid is null".to_owned(), |c| format!("{c} = $2"));
    sqlx::query_as(&format!(
        "select id, label, created_at, revoked_at from {table}
          where tenant_id = $1 and {parent_filter} order by created_at, id",
        table = shape.table,
    ))
    .bind(tenant_id)
    .bind(parent)
    .fetch_all(db)
    .await
}

/// A supervisor and its token's standing, for the operator.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SupervisorCredential {
    pub id: Uuid,
    pub name: String,
    pub area: String,
    pub created_at: DateTime<Utc>,
    pub token_revoked_at: Option<DateTime<Utc>>,
}

pub async fn supervisors(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<SupervisorCredential>> {
    sqlx::query_as(
        "select id, name, area, created_at, token_revoked_at from supervisors order by name, id",
    )
    .fetch_all(db)
    .await
}

// ---- the audit -------------------------------------------------------------------------------

/// What was done to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Issued,
    Revoked,
    Rotated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Issued => "issued",
            Action::Revoked => "revoked",
            Action::Rotated => "rotated",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Operator,
    /// A staff member, by their token's id.
    Staff(Uuid),
    /// A booking's holder (a visitor, no account).
    Visitor,
}

impl Actor {
    fn kind(self) -> &'static str {
        match self {
            Actor::Operator => "operator",
            Actor::Staff(_) => "staff",
            Actor::Visitor => "visitor",
        }
    }

    fn id(self) -> Option<Uuid> {
        match self {
            Actor::Staff(id) => Some(id),
            Actor::Operator | Actor::Visitor => None,
        }
    }
}

/// One line of the audit, before it is written.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub tenant_id: Option<Uuid>,
    pub kind: Kind,
    pub credential_id: Uuid,
    pub action: Action,
    pub replaced_by: Option<Uuid>,
    pub actor: Actor,
}

impl Entry {
    /// A credential issued.
    pub fn issued(tenant_id: Option<Uuid>, kind: Kind, id: Uuid, actor: Actor) -> Entry {
        Entry {
            tenant_id,
            kind,
            credential_id: id,
            action: Action::Issued,
            replaced_by: None,
            actor,
        }
    }
}

pub async fn record(db: impl PgExecutor<'_>, entry: &Entry) -> sqlx::Result<()> {
    sqlx::query(
        "insert into credential_audit (tenant_id, kind, credential_id, action, replaced_by, actor_kind, actor_id)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.tenant_id)
    .bind(entry.kind.as_str())
    .bind(entry.credential_id)
    .bind(entry.action.as_str())
    .bind(entry.replaced_by)
    .bind(entry.actor.kind())
    .bind(entry.actor.id())
    .execute(db)
    .await
    .map(drop)
}

/// A line of the audit as staff read it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditLine {
    pub id: i64,
    pub kind: String,
    pub credential_id: Uuid,
    pub action: String,
    pub replaced_by: Option<Uuid>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// The firm's audit, newest first, at most `rows_max` lines.
pub async fn audit(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    rows_max: i64,
) -> sqlx::Result<Vec<AuditLine>> {
    sqlx::query_as(
        "select id, kind, credential_id, action, replaced_by, actor_kind, actor_id, at
           from credential_audit where tenant_id = $1 order by id desc limit $2",
    )
    .bind(tenant_id)
    .bind(rows_max)
    .fetch_all(db)
    .await
}
