//! Abuse limits on the routes anyone may call (issue 22; product rule "every public route has an
//! abuse limit"). Every `/v1/public/…` route, and the simulated provider's pay button, is
//! rate-limited per client address; creating a booking has a stricter limit of its own. Over a
//! limit the answer is 429 `rate_limited` with `Retry-After` (whole seconds). Device routes are
//! authenticated by the device's secret and the payments callback by its signature, so they are
//! not limited here.
//!
//! The client address is the TCP peer, unless the peer is one of our own reverse proxies
//! (`PARKSHARE_TRUSTED_PROXIES`): then it is the right-most address of `X-Forwarded-For` that is
//! not a trusted proxy — the address our outermost proxy saw. Everything left of it was written
//! by the client itself and proves nothing, so a forged header buys a client no fresh budget.
//! An IPv6 client counts by its /64 ([`bucket`]). The address found is put in the request's
//! extensions ([`ClientAddr`]) for the per-client booking cap.
//!
//! The limiter is GCRA (`governor`), kept in process: with several replicas behind a balancer
//! a client gets up to the limit at each. That is the price of not adding a Redis round trip to
//! every public request; the per-client booking cap, which is what protects the spaces, is
//! counted in Postgres and holds across replicas.

use crate::error::ErrorCode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;

use crate::error::ApiError;

/// How often the limiters forget clients whose budget is full again, so that memory follows
/// the clients of the last minutes rather than every address ever seen.
const PRUNE_EVERY_S: u64 = 60;
/// Most `X-Forwarded-For` entries looked at: a chain of our own proxies is a few hops; a longer
/// header is a client padding it.
const FORWARDED_HOPS_MAX: usize = 16;

/// The address a public request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/public/lots/{lot}/bookings`: draws from both budgets.
    BookingCreation,
    /// Any other public route.
    Public,
}

impl Route {
    pub fn of(method: &Method, path: &str) -> Option<Route> {
        if let Some(rest) = path.strip_prefix("/v1/public/") {
            let segments: Vec<&str> = rest.split('/').collect();
            return Some(match (method, segments.as_slice()) {
                (&Method::POST, ["lots", _, "bookings"]) => Route::BookingCreation,
                _ => Route::Public,
            });
        }
        path.starts_with("/v1/simulated-provider/")
            .then_some(Route::Public)
    }

    /// The budget's name in the `rate_limited` metric.
    pub fn budget(self) -> &'static str {
        match self {
            Route::BookingCreation => "booking",
            Route::Public => "public",
        }
    }
}

/// The configured limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per minute per client on the public routes (also the burst).
    pub public_per_min: NonZeroU32,
    /// Booking attempts per minute per client (also the burst).
    pub booking_per_min: NonZeroU32,
    /// Our reverse proxies, whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// The limiters, one state per client address.
pub struct Limiters {
    public: DefaultKeyedRateLimiter<IpAddr>,
    booking: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpNet>,
    clock: DefaultClock,
}

impl Limiters {
    pub fn new(limits: &Limits) -> Limiters {
        Limiters {
            public: DefaultKeyedRateLimiter::keyed(Quota::per_minute(limits.public_per_min)),
            booking: DefaultKeyedRateLimiter::keyed(Quota::per_minute(limits.booking_per_min)),
            trusted_proxies: limits.trusted_proxies.clone(),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the client's budgets for `route`; over a limit, how long until
    /// the next request would pass.
    pub fn check(&self, route: Route, client: IpAddr) -> Result<(), Duration> {
        let limiters: &[&DefaultKeyedRateLimiter<IpAddr>] = match route {
            Route::BookingCreation => &[&self.public, &self.booking],
            Route::Public => &[&self.public],
        };
        for limiter in limiters {
            if let Err(not_until) = limiter.check_key(&client) {
                return Err(not_until.wait_time_from(self.clock.now()));
            }
        }
        Ok(())
    }

    fn prune(&self) {
        self.public.retain_recent();
        self.booking.retain_recent();
        self.public.shrink_to_fit();
        self.booking.shrink_to_fit();
    }

    /// The client address of a request from `peer` carrying `forwarded_for` headers.
    pub fn client_addr<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        client_addr(peer, forwarded_for, &self.trusted_proxies)
    }
}

fn trusted(addr: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&addr))
}

/// One `X-Forwarded-For` entry: an address, possibly with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The budget an address draws from: an IPv4 address its own, an IPv6 address its /64 — one
/// subscriber's network is commonly a whole /64, and a client could otherwise take a fresh
/// address (and a fresh budget) for every request. An IPv4-mapped IPv6 address is its IPv4.
pub fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The peer, unless it is a trusted proxy: then the right-most untrusted `X-Forwarded-For`
/// entry (`forwarded_for` are the header's values in the order received). When every hop is
/// trusted, or the chain breaks on an entry that is not an address, the left-most trusted
/// address reached stands for the client.
pub fn client_addr<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl Iterator<Item = &'a str>,
    proxies: &[IpNet],
) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(FORWARDED_HOPS_MAX) {
        let Some(addr) = parse_hop(hop) else {
            break;
        };
        client = addr;
        if !trusted(addr, proxies) {
            break;
        }
    }
    client
}

/// Middleware: counts public requests against their client's budget; answers 429 over it.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The path as the router matches it, percent-decoded: `/v1/%70ublic/…` reaches the public
    // routes, so it must not escape their limits.
    let Some(route) = Route::of(req.method(), req.match_info().as_str()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let Some(limiters) = req.app_data::<web::Data<Limiters>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let forwarded = req.headers().get_all("x-forwarded-for");
    let client = bucket(limiters.client_addr(
        req.peer_addr().map(|a| a.ip()),
        forwarded.filter_map(|v| v.to_str().ok()),
    ));
    match limiters.check(route, client) {
        Ok(()) => {
            req.extensions_mut().insert(ClientAddr(client));
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(wait) => {
            crate::metrics::rate_limited(route.budget());
            let err = ApiError::rate_limited(
                ErrorCode::RateLimited,
                "too many requests from this address; retry after the time in Retry-After",
                wait,
            );
            Ok(req.error_response(err).map_into_right_body())
        }
    }
}

/// Forgets full budgets every [`PRUNE_EVERY_S`].
pub fn spawn_pruner(workers: &mut crate::workers::Workers, limiters: web::Data<Limiters>) {
    workers.supervise("rate_limit_pruner", move |shutdown| {
        let limiters = limiters.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(PRUNE_EVERY_S));
            while shutdown.until(every.tick()).await.is_some() {
                limiters.prune();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = nets(&["10.0.0.0/8"]);
        let got = client_addr(Some(ip("203.0.113.7")), ["1.2.3.4"].into_iter(), &proxies);
        assert_eq!(got, ip("203.0.113.7"));
        // With no proxies configured (the default), nobody's header is believed.
        let got = client_addr(Some(ip("10.0.0.1")), ["1.2.3.4"].into_iter(), &[]);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = nets(&["10.0.0.0/8", "192.0.2.10/32"]);
        // The client forged "6.6.6.6"; our proxies appended what they saw.
        let got = client_addr(
            Some(ip("10.0.0.2")),
            ["6.6.6.6, 198.51.100.9", "192.0.2.10"].into_iter(),
            &proxies,
        );
        assert_eq!(got, ip("198.51.100.9"));
        // Ports and IPv6 are understood.
        let got = client_addr(
            Some(ip("10.0.0.2")),
            ["[2001:db8::5]:4711"].into_iter(),
            &proxies,
        );
        assert_eq!(got, ip("2001:db8::5"));
    }

    #[test]
    fn an_all_trusted_or_broken_chain_stops_at_the_last_trusted_hop() {
        let proxies = nets(&["10.0.0.0/8"]);
        let got = client_addr(Some(ip("10.0.0.2")), ["10.0.0.3"].into_iter(), &proxies);
        assert_eq!(got, ip("10.0.0.3"));
        let got = client_addr(
            Some(ip("10.0.0.2")),
            ["1.1.1.1, garbage, 10.0.0.4"].into_iter(),
            &proxies,
        );
        assert_eq!(got, ip("10.0.0.4"));
        let got = client_addr(Some(ip("10.0.0.2")), std::iter::empty(), &proxies);
        assert_eq!(got, ip("10.0.0.2"));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_itself() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:2::2")));
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
        assert_eq!(bucket(ip("198.51.100.7")), ip("198.51.100.7"));
    }

    #[test]
    fn routes_are_classified_by_path_and_method() {
        let lot = "/v1/public/lots/7e1c/bookings";
        assert_eq!(Route::of(&Method::POST, lot), Some(Route::BookingCreation));
        assert_eq!(Route::of(&Method::GET, lot), Some(Route::Public));
        assert_eq!(
            Route::of(&Method::GET, "/v1/public/disclosure/x"),
            Some(Route::Public)
        );
        assert_eq!(Route::of(&Method::POST, "/v1/gate/events"), None);
        assert_eq!(
            Route::of(&Method::POST, "/v1/payments/callbacks/simulated"),
            None
        );
    }

    #[test]
    fn a_client_over_its_budget_waits_and_others_do_not() {
        let limiters = Limiters::new(&Limits {
            public_per_min: NonZeroU32::MIN.saturating_add(2),
            booking_per_min: NonZeroU32::MIN,
            trusted_proxies: Vec::new(),
        });
        let a = ip("198.51.100.1");
        for _ in 0..3 {
            assert!(limiters.check(Route::Public, a).is_ok());
        }
        let wait = limiters.check(Route::Public, a).err();
        assert!(wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(20)));
        assert!(limiters.check(Route::Public, ip("198.51.100.2")).is_ok());
        // Booking creation has its own, stricter budget.
        let b = ip("198.51.100.3");
        assert!(limiters.check(Route::BookingCreation, b).is_ok());
        assert!(limiters.check(Route::BookingCreation, b).is_err());
        assert!(limiters.check(Route::Public, b).is_ok());
    }
}
