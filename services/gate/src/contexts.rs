//! Credentials kept in process: gate contexts and staff identities, by their token's digest.
//!
//! Every camera read starts by finding its gate from the credential: a three-table join and
//! two JSON documents (the compound's policy, the lot's draft tariff) to parse. Every booth
//! call (a quote, a cash payment) starts by finding the staff member's firm from theirs. Both
//! change rarely and are read hundreds of times a second, so each is cached by the digest.
//!
//! A cached entry is forgotten
//! - at once in this process after a staff write that may change a context (anything but
//!   the booth's payments and refunds: `forget_after_writes`), so a change made through this
//!   replica is seen by its next read;
//! - within milliseconds in every replica, by a `NOTIFY parkshare_gate_contexts` that triggers
//!   on `gates`, `lots`, `compounds` (migration 0013), `staff_tokens` (migration 0017) and
//!   every other credential table (migration 0019) send when a column of a cached entry
//!   changes or a credential is revoked or rotated, including changes made by hand in SQL;
//! - at once in this process after a revocation or rotation through the API (`revocation`),
//!   whoever made it (the operator's routes are outside the staff API);
//! - whenever the listening connection was lost (a notification may have been missed), and in
//!   any case after [`CONTEXT_TTL`].
//!
//! Unknown credentials are not cached: a guessed token costs a query, never memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

use crate::startup::AppState;
use crate::store::registry::GateContext;

/// The longest a cached entry is used without being read again.
pub const CONTEXT_TTL: Duration = Duration::from_secs(60);
/// The channel the registry triggers notify.
pub const CHANNEL: &str = "parkshare_gate_contexts";

/// A staff token's id, firm and the label it was issued under.
#[derive(Debug)]
pub struct StaffIdentity {
    /// The token's id: who did it, in the credential audit.
    pub token_id: Uuid,
    pub tenant_id: Uuid,
    pub label: String,
}

/// An entry and when it was read from Postgres.
type Cached<V> = (Arc<V>, Instant);

/// Entries read from Postgres, by credential digest.
pub struct ByDigest<V> {
    /// This kind's hit and miss counters in the metrics.
    counters: Option<(prometheus::IntCounter, prometheus::IntCounter)>,
    entries: RwLock<HashMap<Vec<u8>, Cached<V>>>,
    /// Bumped by every invalidation: a lookup that began before one does not store its
    /// (possibly stale) result.
    generation: AtomicU64,
    /// Lookups that went to Postgres.
    misses: AtomicU64,
}

impl<V> ByDigest<V> {
    fn new(kind: &'static str) -> ByDigest<V> {
        ByDigest {
            counters: crate::metrics::credential_lookups(kind),
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The entry of this digest, from the cache or else from `read` (which answers `None` for
    /// an unknown credential).
    pub async fn get_or_read<E, Fut>(
        &self,
        digest: &[u8],
        read: impl FnOnce() -> Fut,
    ) -> Result<Option<Arc<V>>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(entry) = self.cached(digest) {
            if let Some((hits, _)) = &self.counters {
                hits.inc();
            }
            return Ok(Some(entry));
        }
        if let Some((_, misses)) = &self.counters {
            misses.inc();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Acquire);
        let Some(entry) = read().await?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut map) = self.entries.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                map.insert(digest.to_vec(), (entry.clone(), Instant::now()));
            }
        }
        Ok(Some(entry))
    }

    fn cached(&self, digest: &[u8]) -> Option<Arc<V>> {
        let map = self.entries.read().ok()?;
        let (entry, at) = map.get(digest)?;
        (at.elapsed() < CONTEXT_TTL).then(|| entry.clone())
    }

    /// How many lookups went to Postgres since the process started.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }
}

/// The credentials this process keeps.
pub struct Credentials {
    pub gates: ByDigest<GateContext>,
    pub staff: ByDigest<StaffIdentity>,
}

impl Default for Credentials {
    fn default() -> Credentials {
        Credentials {
            gates: ByDigest::new("gate"),
            staff: ByDigest::new("staff"),
        }
    }
}

impl Credentials {
    /// Forgets every cached entry.
    pub fn forget_all(&self) {
        self.gates.forget_all();
        self.staff.forget_all();
    }
}

/// Listens for registry changes made anywhere and forgets the cached entries on each, for the
/// life of the process.
pub fn spawn_listener(db: PgPool, credentials: Arc<Credentials>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&db, &credentials).await {
                tracing::warn!(error = %e, "credential cache listener lost its connection; retrying");
            }
            credentials.forget_all();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn listen(db: &PgPool, credentials: &Credentials) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    // Anything changed before the listener was up is not in the cache's future.
    credentials.forget_all();
    loop {
        // A notification, or `None`: the connection was lost and re-established, and
        // notifications may have been missed. Either way the cache is forgotten.
        listener.try_recv().await?;
        credentials.forget_all();
    }
}

/// Staff writes that change no gate context and no staff token: the booth's cash payments
/// and refunds, many a second at a busy compound. Forgetting the cache after each would send
/// the next read of every gate to Postgres.
const CONTEXT_FREE_WRITES: [&str; 2] = ["/v1/admin/sessions/", "/v1/admin/payments/"];

/// Whether a staff request may change a cached entry: any write but the booth's.
fn may_change_contexts(method: &Method, path: &str) -> bool {
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    writes
        && !CONTEXT_FREE_WRITES
            .iter()
            .any(|free| path.starts_with(free))
}

/// Wraps the staff API: forgets the cached entries after every staff write that may change
/// one (a gate added, a device set up, a policy changed), so that this process's next read
/// sees it at once; other processes hear of it through the notification. (Operator writes —
/// tenants, supervisors — touch no context.)
pub async fn forget_after_writes(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let credentials = may_change_contexts(req.method(), req.path())
        .then(|| req.app_data::<actix_web::web::Data<AppState>>())
        .flatten()
        .map(|state| state.credentials.clone());
    let response = next.call(req).await;
    if let Some(credentials) = credentials {
        credentials.forget_all();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_booths_writes_keep_the_cache() {
        let keeps = |method: Method, path: &str| !may_change_contexts(&method, path);
        assert!(keeps(Method::POST, "/v1/admin/sessions/0190/payments"));
        assert!(keeps(Method::POST, "/v1/admin/payments/0190/refunds"));
        assert!(keeps(Method::GET, "/v1/admin/lots/0190"));
        assert!(!keeps(Method::PUT, "/v1/admin/compounds/0190/policy"));
        assert!(!keeps(Method::PATCH, "/v1/admin/lots/0190"));
        assert!(!keeps(Method::POST, "/v1/admin/lots/0190/gates"));
        assert!(!keeps(Method::PUT, "/v1/admin/gates/0190/device"));
        // A look-alike prefix is not the booth's.
        assert!(!keeps(Method::POST, "/v1/admin/sessionsx/0190"));
    }
}
