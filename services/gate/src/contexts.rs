//! Gate contexts kept in process.
//!
//! Every camera read starts by finding its gate from the credential: a three-table join and
//! two JSON documents (the compound's policy, the lot's draft tariff) to parse. They change a
//! few times a year and are read hundreds of times a second, so the context is cached by the
//! credential's digest.
//!
//! A cached context is forgotten
//! - at once in this process after any staff write (`forget_after_writes`), so a
//!   change made through this replica is seen by its next read;
//! - within milliseconds in every replica, by a `NOTIFY parkshare_gate_contexts` that triggers
//!   on `gates`, `lots` and `compounds` send when a column of the context changes
//!   (migration 0013), including changes made by hand in SQL;
//! - whenever the listening connection was lost (a notification may have been missed), and in
//!   any case after [`CONTEXT_TTL`].
//!
//! Unknown credentials are not cached: a guessed token costs a query, never memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::startup::AppState;
use crate::store::registry::{self, GateContext};

/// The longest a cached context is used without being read again.
pub const CONTEXT_TTL: Duration = Duration::from_secs(60);
/// The channel the registry triggers notify.
pub const CHANNEL: &str = "parkshare_gate_contexts";

/// A context and when it was read from Postgres.
type Cached = (Arc<GateContext>, Instant);

#[derive(Default)]
pub struct GateContexts {
    by_digest: RwLock<HashMap<Vec<u8>, Cached>>,
    /// Bumped by every invalidation: a lookup that began before one does not store its
    /// (possibly stale) result.
    generation: AtomicU64,
}

impl GateContexts {
    /// The gate whose credential has this digest, from the cache or from Postgres.
    pub async fn by_secret(
        &self,
        db: &PgPool,
        digest: &[u8],
    ) -> anyhow::Result<Option<Arc<GateContext>>> {
        if let Some(context) = self.cached(digest) {
            return Ok(Some(context));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let Some(context) = registry::gate_by_secret(db, digest).await?.map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut map) = self.by_digest.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                map.insert(digest.to_vec(), (context.clone(), Instant::now()));
            }
        }
        Ok(Some(context))
    }

    fn cached(&self, digest: &[u8]) -> Option<Arc<GateContext>> {
        let map = self.by_digest.read().ok()?;
        let (context, at) = map.get(digest)?;
        (at.elapsed() < CONTEXT_TTL).then(|| context.clone())
    }

    /// Forgets every cached context.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.by_digest.write() {
            map.clear();
        }
    }
}

/// Listens for registry changes made anywhere and forgets the cached contexts on each, for the
/// life of the process.
pub fn spawn_listener(db: PgPool, contexts: Arc<GateContexts>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&db, &contexts).await {
                tracing::warn!(error = %e, "gate context listener lost its connection; retrying");
            }
            contexts.forget_all();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn listen(db: &PgPool, contexts: &GateContexts) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    // Anything changed before the listener was up is not in the cache's future.
    contexts.forget_all();
    loop {
        // A notification, or `None`: the connection was lost and re-established, and
        // notifications may have been missed. Either way the cache is forgotten.
        listener.try_recv().await?;
        contexts.forget_all();
    }
}

/// Wraps the staff API: forgets the cached contexts after every staff write (a gate added, a
/// device set up, a policy changed), so that this process's next read sees it at once; other
/// processes hear of it through the notification. (Operator writes — tenants, supervisors —
/// touch no context.)
pub async fn forget_after_writes(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let contexts = writes
        .then(|| req.app_data::<actix_web::web::Data<AppState>>())
        .flatten()
        .map(|state| state.gates.clone());
    let response = next.call(req).await;
    if let Some(contexts) = contexts {
        contexts.forget_all();
    }
    response
}
