//! Credentials kept in process: gate contexts and staff identities, by their token's digest.
//!
//! Every camera read starts by finding its gate from the credential: a three-table join and
//! two JSON documents (the compound's policy, the lot's draft tariff) to parse. Every booth
//! call (a quote, a cash payment) starts by finding the staff member's firm from theirs. Both
//! change rarely and are read hundreds of times a second, so each is cached by the digest.
//!
//! A cached entry is **suspected** — read again before its next use, but still able to stand
//! in through an outage — whenever something may have changed it:
//! - at once in this process after a staff write that may change a context (anything but
//!   the booth's payments and refunds: `forget_after_writes`), so a change made through this
//!   replica is seen by its next read;
//! - within milliseconds in every replica, by a `NOTIFY parkshare_gate_contexts` that triggers
//!   on `gates`, `lots`, `compounds` (migration 0013), `staff_tokens` (migration 0017) and
//!   every other credential table (migration 0019) send when a column of a cached entry
//!   changes or a credential is revoked or rotated, including changes made by hand in SQL;
//! - whenever the listening connection was lost (a notification may have been missed), and in
//!   any case after [`CONTEXT_TTL`].
//!
//! On each notification (a write here sends one too) every cached gate is read again at once, in
//! the background: a gate that no longer reads back (its secret revoked or rotated, the gate
//! gone) is dropped, the others are fresh again. Until its re-read an entry is used only if
//! Postgres cannot be reached. A change anywhere — any firm's, any gate's — therefore never
//! leaves a lane without its credential in an outage that follows it (it did: issue 23's
//! outside test). Staff identities are forgotten outright on a change: the booth has no
//! fail-open policy to keep.
//!
//! A revocation or rotation through the API drops the revoked credential itself at once in
//! this process (`revocation`), whoever made it; other processes drop it when their re-read
//! after the notification finds it gone — only an outage beginning within those milliseconds
//! would let it stand in.
//!
//! Through a Postgres outage the gates keep moving: an entry that is due to be read again
//! but cannot be, because Postgres is unreachable, is used as it was for up to
//! [`OUTAGE_STALENESS_MAX`], so the lane's own policy (fail-open or fail-closed) answers
//! instead of an authentication error.
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

use crate::store::registry::GateContext;

/// The longest a cached entry is used without being read again.
pub const CONTEXT_TTL: Duration = Duration::from_secs(60);
/// The longest an entry that could not be read again, because Postgres was unreachable, is
/// used as it was: long enough to ride out a database restart or failover, short enough that
/// a credential revoked during a long outage soon stops working anyway.
pub const OUTAGE_STALENESS_MAX: Duration = Duration::from_secs(15 * 60);
/// How long the re-read of an entry due for one may take before the entry stands in for it:
/// a healthy read takes a millisecond, and an outage would otherwise hold the lane for the
/// pool's whole acquire timeout (5 s), past a camera's own timeout and the lane's budget.
pub const STALE_REREAD_WAIT: Duration = Duration::from_millis(300);
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

/// Errors that say Postgres could not be reached: the cue to use an entry due for a re-read.
pub trait Outage {
    fn is_outage(&self) -> bool;
}

impl Outage for sqlx::Error {
    fn is_outage(&self) -> bool {
        crate::error::is_outage(self)
    }
}

impl Outage for anyhow::Error {
    fn is_outage(&self) -> bool {
        self.downcast_ref::<sqlx::Error>()
            .is_some_and(crate::error::is_outage)
    }
}

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
    /// Entries read before this instant must be read again before they are used, except
    /// through an outage: set when the listener lost its connection.
    suspect_before: RwLock<Option<Instant>>,
}

impl<V> ByDigest<V> {
    fn new(kind: &'static str) -> ByDigest<V> {
        ByDigest {
            counters: crate::metrics::credential_lookups(kind),
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            suspect_before: RwLock::new(None),
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
        E: Outage + std::fmt::Display,
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
        let stale = self.stale(digest);
        let read = match &stale {
            None => read().await,
            Some(entry) => match tokio::time::timeout(STALE_REREAD_WAIT, read()).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::warn!("Postgres slow or unreachable: using a cached credential");
                    return Ok(Some(entry.clone()));
                }
            },
        };
        let read = match (read, stale) {
            (Ok(read), _) => read,
            (Err(e), Some(entry)) if e.is_outage() => {
                tracing::warn!(error = %e, "Postgres unreachable: using a cached credential");
                return Ok(Some(entry));
            }
            (Err(e), _) => return Err(e),
        };
        let Some(entry) = read.map(Arc::new) else {
            // Revoked, rotated or gone: it must not stand in through a later outage either.
            if let Ok(mut map) = self.entries.write() {
                map.remove(digest);
            }
            return Ok(None);
        };
        if let Ok(mut map) = self.entries.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                // Entries past any use are dropped here, so the map holds only credentials
                // seen in the last OUTAGE_STALENESS_MAX.
                map.retain(|_, (_, at)| at.elapsed() < OUTAGE_STALENESS_MAX);
                map.insert(digest.to_vec(), (entry.clone(), Instant::now()));
            }
        }
        Ok(Some(entry))
    }

    /// A fresh entry: read within [`CONTEXT_TTL`] and since the listener last lost touch.
    fn cached(&self, digest: &[u8]) -> Option<Arc<V>> {
        let suspect_before = self.suspect_before.read().ok().and_then(|s| *s);
        let map = self.entries.read().ok()?;
        let (entry, at) = map.get(digest)?;
        let fresh = at.elapsed() < CONTEXT_TTL && suspect_before.is_none_or(|s| *at >= s);
        fresh.then(|| entry.clone())
    }

    /// An entry due for a re-read, still within [`OUTAGE_STALENESS_MAX`].
    fn stale(&self, digest: &[u8]) -> Option<Arc<V>> {
        let map = self.entries.read().ok()?;
        let (entry, at) = map.get(digest)?;
        (at.elapsed() < OUTAGE_STALENESS_MAX).then(|| entry.clone())
    }

    /// Every entry must be read again before use, but may stand in through an outage.
    fn suspect_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut suspect) = self.suspect_before.write() {
            *suspect = Some(Instant::now());
        }
    }

    /// How many lookups went to Postgres since the process started.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Forgets every entry: none may stand in through an outage.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.entries.write() {
            map.clear();
        }
    }

    /// Forgets the entries `which` picks (a credential revoked or rotated).
    pub fn forget_where(&self, which: impl Fn(&V) -> bool) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.entries.write() {
            map.retain(|_, (entry, _)| !which(entry));
        }
    }

    /// The digests of the cached entries.
    fn cached_digests(&self) -> Vec<Vec<u8>> {
        self.entries
            .read()
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
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

    /// Every entry must be read again before use; through an outage it may stand in.
    pub fn suspect_all(&self) {
        self.gates.suspect_all();
        self.staff.suspect_all();
    }

    /// Something may have changed: staff identities are forgotten, gates suspected (read
    /// again before use, standing in only through an outage).
    pub fn changed_here(&self) {
        self.staff.forget_all();
        self.gates.suspect_all();
    }

    /// Drops a revoked or rotated credential at once. Only gates' and staff's are kept here;
    /// a staff token's digest is not known by its id, so every staff identity goes.
    pub fn forget_revoked(&self, kind: crate::store::credentials::Kind, id: uuid::Uuid) {
        use crate::store::credentials::Kind;
        match kind {
            Kind::Device => self.gates.forget_where(|gate| gate.gate_id == id),
            Kind::Staff => self.staff.forget_all(),
            Kind::Owner
            | Kind::Committee
            | Kind::DisclosureLink
            | Kind::Supervisor
            | Kind::Booking => {}
        }
    }
}

/// Listens for registry changes made anywhere and forgets the cached entries on each, until
/// shutdown.
pub fn spawn_listener(
    workers: &mut crate::workers::Workers,
    db: PgPool,
    credentials: Arc<Credentials>,
) {
    workers.supervise("credential_listener", move |shutdown| {
        let (db, credentials) = (db.clone(), credentials.clone());
        async move {
            // Listening is all waiting: shutdown ends it at once.
            while let Some(outcome) = shutdown.until(listen(&db, &credentials)).await {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "credential cache listener lost its connection; retrying");
                }
                // A notification may have been missed: re-read every entry before its next
                // use, but keep it for an outage (this is what one looks like).
                credentials.suspect_all();
                if shutdown.until(tokio::time::sleep(Duration::from_secs(1))).await.is_none() {
                    return;
                }
            }
        }
    });
}

async fn listen(db: &PgPool, credentials: &Arc<Credentials>) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    // Anything changed before the listener was up is not in the cache's future.
    changed(db, credentials);
    loop {
        // A notification: every entry suspected and the gates read again. `None`: the connection
        // was lost and re-established, and notifications may have been missed: suspect.
        match listener.try_recv().await? {
            Some(_) => changed(db, credentials),
            None => credentials.suspect_all(),
        }
    }
}

/// Gate contexts read again at once after a notification, at most this many at a time.
const REREADS_AT_ONCE: usize = 4;

/// Something may have changed a cached credential: staff identities are forgotten; every
/// cached gate is suspected (read again before use, standing in only through an outage) and
/// read again now, in the background, so that the gates are fresh before an outage that
/// follows the change, and one that no longer reads back (revoked, rotated, gone) is dropped.
pub fn changed(db: &PgPool, credentials: &Arc<Credentials>) {
    credentials.changed_here();
    let suspected = credentials.gates.cached_digests();
    if suspected.is_empty() {
        return;
    }
    let (db, credentials) = (db.clone(), credentials.clone());
    tokio::spawn(async move {
        use futures_util::StreamExt;
        futures_util::stream::iter(suspected)
            .for_each_concurrent(REREADS_AT_ONCE, |digest| {
                let (db, credentials) = (&db, &credentials);
                async move {
                    let read = credentials
                        .gates
                        .get_or_read(&digest, || {
                            crate::store::registry::gate_by_secret(db, &digest)
                        })
                        .await;
                    if let Err(e) = read {
                        tracing::warn!(error = %e, "could not read a gate context again");
                    }
                }
            })
            .await;
    });
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

/// Wraps the staff API: suspects the cached entries after every staff write that may change
/// one (a gate added, a device set up, a policy changed), so that this process's next read
/// sees it at once; every process, this one included, re-reads its gates on the notification. (Operator writes —
/// tenants, supervisors — touch no context.)
pub async fn forget_after_writes(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let state = may_change_contexts(req.method(), req.path())
        .then(|| req.app_data::<actix_web::web::Data<Credentials>>().cloned())
        .flatten();
    let response = next.call(req).await;
    if let Some(credentials) = state {
        // Seen by this process's next read; the re-read of the gates is the notification's
        // (the triggers send one for every change of a context), not done twice here.
        credentials.changed_here();
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
