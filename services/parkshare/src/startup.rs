//! Wiring: database creation and migration, Redis connection, the HTTP server.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::occupancy::Occupancy;
use crate::settings::{redact_url, Settings};
use crate::state::{AppState, PaymentsConfig};
use crate::workers::Workers;
use crate::{error, openapi, sync};

/// Largest CSV import.
pub const CSV_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Creates the service's database if it does not exist yet.
pub async fn ensure_database(database_url: &str) -> anyhow::Result<()> {
    let options: PgConnectOptions = database_url
        .parse()
        .context("PARKSHARE_DATABASE_URL is not a Postgres URL")?;
    let name = options.get_database().unwrap_or("parkshare").to_owned();
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .with_context(|| format!("connecting to Postgres at {}", redact_url(database_url)))?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        match sqlx::query(&format!("create database \"{quoted}\""))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "database created"),
            // Another replica created it in the meantime.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}

/// A pooled connection idle this long is pinged before it is handed out.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Connects to Postgres (creating and migrating the database) and Redis.
pub async fn connect(settings: &Settings) -> anyhow::Result<AppState> {
    if settings.migrate_database_url.is_some() {
        migrate(settings).await?;
    } else {
        ensure_database(&settings.database_url).await?;
    }
    let db = PgPoolOptions::new()
        .max_connections(settings.db_pool_max)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // No ping before each use — it was a round trip on every query and transaction, a
        // third of a booth payment's — except for a connection that sat idle: after a quiet
        // spell (a Postgres restart, a dropped link) a dead one is replaced, not handed out.
        // Every connection is still checked when it goes back to the pool.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_PING_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect(&settings.database_url)
        .await
        .context("connecting the Postgres pool")?;
    // With no owner's connection the service migrates as itself, unless the schema is already
    // this build's (a role without the owner's rights, after the migration Job, cannot).
    if settings.migrate_database_url.is_none() && !crate::store::schema_is_current(&db).await {
        crate::store::MIGRATOR
            .run(&db)
            .await
            .context("running migrations")?;
    }
    warn_if_ledger_owner(&db).await?;
    let redis_timeout = std::time::Duration::from_millis(settings.redis_timeout_ms);
    let redis = crate::occupancy::connect(
        &settings.redis_url,
        settings.redis_cluster == crate::settings::Switch::On,
        redis_timeout,
    )
    .await
    .with_context(|| format!("connecting to Redis at {}", redact_url(&settings.redis_url)))?;
    let provider_secret = match &settings.provider_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "PARKSHARE_PROVIDER_SECRET is unset: using a random one for this process"
            );
            crate::auth::new_token().into_bytes()
        }
    };
    if settings.simulated_provider_on() {
        // Loud on purpose: with it on, anyone can mark a payment intent paid and leave free.
        tracing::warn!(
            "THE SIMULATED PAYMENT PROVIDER IS ON: anyone can mark a payment intent paid \
             without paying. For local runs, demos and tests only; never in production \
             (PARKSHARE_SIMULATED_PROVIDER=off)"
        );
    }
    let occupancy =
        Occupancy::new(redis, settings.redis_prefix.clone()).with_timeout(redis_timeout);
    Ok(AppState {
        batches: crate::gate::decide::Batches::start(
            db.clone(),
            occupancy.clone(),
            settings.gate_batch_workers,
            settings.gate_batch_max,
        ),
        db,
        clock: crate::clock::Clock::system(),
        occupancy,
        operator_token_digest: settings
            .operator_token
            .as_ref()
            .map(|token| crate::auth::digest(token.expose_secret())),
        payments: PaymentsConfig {
            provider_secret,
            simulated: settings.simulated_provider_on(),
            callback_base_url: settings.callback_base_url.clone().unwrap_or_default(),
            paid_intents: crate::state::PaidIntents {
                booking: |tx, intent, booking_id, amount, paid_at, now| {
                    Box::pin(crate::sharing::visitor::confirm_paid(
                        tx, intent, booking_id, amount, paid_at, now,
                    ))
                },
                rental: |tx, intent, rental_id, amount, paid_at, _now| {
                    Box::pin(crate::allocation::rentals::confirm_paid(
                        tx, intent, rental_id, amount, paid_at,
                    ))
                },
            },
        },
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?,
        public_base_url: settings.public_base_url.clone().unwrap_or_default(),
        outbound: crate::outbound::Clients::new(
            settings.webhook_private_hosts.allowed(),
            std::sync::Arc::new(crate::outbound::SystemResolver),
        )
        .context("building the outbound HTTP clients")?,
        webhook_private_hosts: settings.webhook_private_hosts.allowed(),
        lanes: crate::state::lanes::Lanes::new(
            std::time::Duration::from_millis(settings.gate_decision_budget_ms),
            std::time::Duration::from_secs(settings.manual_open_ttl_s),
            std::time::Duration::from_secs(settings.live_read_age_max_s),
            crate::state::journal::Journal::open(&settings.fail_open_journal_dir).with_context(
                || {
                    format!(
                        "opening the fail-open journal in {}",
                        settings.fail_open_journal_dir.display()
                    )
                },
            )?,
        ),
        credentials: std::sync::Arc::default(),
        booking_caps: parkshare_sharing::BookingCaps {
            hold_min: settings.booking_hold_min,
            per_plate_max: settings.bookings_per_plate_max,
            per_client_max: settings.bookings_per_client_max,
        },
        lottery_window_min: settings.lottery_window_min,
        rentals: crate::settings::RentalSettings {
            grace_days: settings.rental_grace_days,
            reminder_days: settings.rental_reminder_days,
        },
    })
}

/// Rebuilds occupancy as the settings say, starts the background workers, then serves on
/// `listener` (once the returned [`Service`] is served).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    settings: &Settings,
) -> anyhow::Result<Service> {
    let rebuilt = sync::rebuild_all(&state, settings.rebuild_on_start)
        .await
        .map_err(|e| anyhow::anyhow!("rebuilding occupancy at start: {e:?}"))?;
    tracing::info!(lots = rebuilt, mode = ?settings.rebuild_on_start, "occupancy rebuilt at start");
    let mut state = state;
    if state.payments.callback_base_url.is_empty() {
        state.payments.callback_base_url = format!("http://{}", listener.local_addr()?);
    }
    if state.public_base_url.is_empty() {
        state.public_base_url = format!("http://{}", listener.local_addr()?);
    }
    let prometheus = crate::metrics::http()?;
    let state = web::Data::new(state);
    // The abuse limits and the credential cache are also handed to the middleware that use
    // them on their own, so those (`ratelimit`, `contexts`) need not know the whole state.
    let limiters = web::Data::new(crate::ratelimit::Limiters::new(&crate::ratelimit::Limits {
        public_per_min: settings.public_rate_per_min,
        booking_per_min: settings.booking_rate_per_min,
        trusted_proxies: settings.trusted_proxies.clone(),
    }));
    let credentials = web::Data::from(state.credentials.clone());
    let workers = start_workers(&state, &limiters, settings);
    let server = HttpServer::new(move || {
        App::new()
            // Innermost: a 429 is logged, counted and carries its request id like any answer.
            .wrap(actix_web::middleware::from_fn(crate::ratelimit::limit))
            .wrap(actix_web::middleware::from_fn(request_id_header))
            .wrap(actix_web::middleware::from_fn(docs_policy))
            .wrap(security_headers())
            .wrap(actix_web::middleware::from_fn(
                crate::input::refuse_malformed_json,
            ))
            .wrap(tracing_actix_web::TracingLogger::<
                crate::telemetry::RedactedRootSpan,
            >::new())
            .wrap(prometheus.clone())
            .app_data(state.clone())
            .app_data(limiters.clone())
            .app_data(credentials.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(crate::input::JSON_BODY_BYTES_MAX)
                    .error_handler(error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PayloadConfig::default().limit(CSV_BODY_BYTES_MAX))
            .configure(openapi::routes)
            .configure(|cfg| {
                openapi::api(&mut utoipa_actix_web::service_config::ServiceConfig::new(
                    cfg,
                ))
            })
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(HTTP_DRAIN_S)
    .listen(listener)?
    .run();
    Ok(Service { server, workers })
}

/// How long the server lets in-flight requests finish after SIGTERM or SIGINT before it drops
/// them; the workers then have [`crate::workers::STOP_DEADLINE`].
pub const HTTP_DRAIN_S: u64 = 30;

/// The running service: the HTTP server and the background workers beside it.
pub struct Service {
    server: Server,
    workers: Workers,
}

impl Service {
    /// Serves until the server stops (SIGTERM or SIGINT), then stops the background workers:
    /// each finishes the pass under way, and one still running after
    /// [`crate::workers::STOP_DEADLINE`] is aborted. Returns the names of those aborted.
    pub async fn serve(self) -> std::io::Result<Vec<&'static str>> {
        let served = self.server.await;
        tracing::info!("server stopped; stopping the background workers");
        let aborted = self.workers.stop(crate::workers::STOP_DEADLINE).await;
        served.map(|()| aborted)
    }
}

/// Starts every background worker, each under its supervisor (docs/architecture.md,
/// "background").
fn start_workers(
    state: &web::Data<AppState>,
    limiters: &web::Data<crate::ratelimit::Limiters>,
    settings: &Settings,
) -> Workers {
    let mut workers = Workers::new();
    crate::webhooks::spawn_worker(
        &mut workers,
        state.db.clone(),
        state.outbound.webhooks.clone(),
        state.clock.clone(),
    );
    crate::sharing::overstay::spawn_sweeper(&mut workers, state.db.clone(), state.clock.clone());
    crate::allocation::rentals::term::spawn_sweeper(
        &mut workers,
        state.db.clone(),
        state.rentals.reminder_days,
        state.clock.clone(),
    );
    sync::spawn_occupancy_refresh(&mut workers, state.db.clone(), state.occupancy.clone());
    crate::contexts::spawn_listener(&mut workers, state.db.clone(), state.credentials.clone());
    sync::spawn_reconciler(
        &mut workers,
        state.clone(),
        std::time::Duration::from_millis(settings.occupancy_reconcile_ms),
    );
    crate::ratelimit::spawn_pruner(&mut workers, limiters.clone());
    crate::gate::lanes::spawn_lane_worker(
        &mut workers,
        state.clone(),
        std::time::Duration::from_millis(settings.fail_open_drain_ms.max(10)),
    );
    workers
}

/// Headers on every answer. The HTML pages (price board, disclosure, API docs) load nothing
/// from outside and run no script: the policy says so, so an injected tag could not either.
/// JSON answers get the same; it costs nothing and covers a browser opening one directly.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
}

/// The API page (`/docs`, Swagger UI) runs its own script and styles, all served from this
/// binary: its policy allows this origin's, and still nothing from outside.
async fn docs_policy(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let docs = req.path() == "/docs" || req.path().starts_with("/docs/");
    let mut response = next.call(req).await?;
    if docs {
        response.headers_mut().insert(
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            actix_web::http::header::HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'",
            ),
        );
    }
    Ok(response)
}

async fn not_found() -> Result<HttpResponse, error::ApiError> {
    Err(error::ApiError::NotFound("route"))
}

/// Answers the request id tracing-actix-web gave the request (also in every log line of it)
/// as `x-request-id`, so that a client's report can be found in the logs.
async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    let mut response = next.call(req).await?;
    if let Some(id) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            id,
        );
    }
    Ok(response)
}

/// Creates the database if needed and applies the migrations as the schema's owner
/// (`PARKSHARE_MIGRATE_DATABASE_URL`, else the service's own connection); when the service
/// connects as another role, grants that role the service's rights (the migration Job runs
/// only this).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let owner_url = settings
        .migrate_database_url
        .as_deref()
        .unwrap_or(&settings.database_url);
    ensure_database(owner_url).await?;
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect(owner_url)
        .await
        .context("connecting to Postgres as the schema owner")?;
    crate::store::MIGRATOR
        .run(&db)
        .await
        .context("running migrations")?;
    let service: PgConnectOptions = settings
        .database_url
        .parse()
        .context("PARKSHARE_DATABASE_URL is not a Postgres URL")?;
    let owner: PgConnectOptions = owner_url.parse().context("not a Postgres URL")?;
    if service.get_username() != owner.get_username() {
        grant_service_rights(&db, service.get_username()).await?;
    }
    db.close().await;
    Ok(())
}

/// Gives `role` what the service needs and nothing more: reading and writing rows, but on the
/// append-only tables (those guarded by the `refuse_change` trigger: the ledger, filed tariffs,
/// closed periods, audits) only reading and inserting; never TRUNCATE, TRIGGER or REFERENCES,
/// and, not owning the tables, it cannot ALTER them or disable their triggers (issue 21,
/// item 7). Run after every migration, so new tables are covered.
pub async fn grant_service_rights(db: &PgPool, role: &str) -> anyhow::Result<()> {
    let role = format!("\"{}\"", role.replace('"', "\"\""));
    let append_only: Vec<String> = sqlx::query_scalar(
        "select distinct quote_ident(c.relname) from pg_trigger t
           join pg_class c on c.oid = t.tgrelid join pg_proc p on p.oid = t.tgfoid
          where p.proname = 'refuse_change' and not t.tgisinternal
            and c.relnamespace = 'public'::regnamespace order by 1",
    )
    .fetch_all(db)
    .await?;
    let mut statements = vec![
        format!("grant usage on schema public to {role}"),
        format!("grant select, insert, update, delete on all tables in schema public to {role}"),
        format!("grant usage, select on all sequences in schema public to {role}"),
        format!("revoke insert, update, delete on _sqlx_migrations from {role}"),
    ];
    if !append_only.is_empty() {
        statements.push(format!(
            "revoke update, delete on {} from {role}",
            append_only.join(", ")
        ));
    }
    let mut tx = db.begin().await?;
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("granting the service role: {statement}"))?;
    }
    tx.commit().await?;
    tracing::info!(role = %role, "granted the service role its rights");
    Ok(())
}

/// Warns when the service's own role could rewrite the ledger (a superuser, or the owner of
/// its tables, who can TRUNCATE, ALTER and disable triggers).
async fn warn_if_ledger_owner(db: &PgPool) -> anyhow::Result<()> {
    let owner: bool = sqlx::query_scalar(
        "select r.rolsuper or pg_has_role(current_user, c.relowner, 'usage')
           from pg_roles r, pg_class c
          where r.rolname = current_user and c.oid = 'postings'::regclass",
    )
    .fetch_one(db)
    .await?;
    if owner {
        tracing::warn!(
            "the service connects as the ledger's owner or a superuser: it could truncate the \
             ledger or disable its triggers. In production give PARKSHARE_DATABASE_URL a role \
             without those rights and PARKSHARE_MIGRATE_DATABASE_URL the owner (docs/security.md)"
        );
    }
    Ok(())
}
