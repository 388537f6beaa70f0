//! Outbound HTTP to addresses someone outside the service chose: subscribers' webhooks (any
//! public host) and the compounds' devices (the Hikvision barrier call, on the compound's own
//! network). Unguarded, either makes the service call into its own network on request
//! (server-side request forgery): a name that resolves to 127.0.0.1, a cloud metadata address,
//! an IPv6 spelling of a private IPv4 address.
//!
//! The guard, all of it here:
//! - [`classify`] says which non-public [`Range`] an address is in, if any; an IPv6 address
//!   that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by the IPv4 address;
//! - a [`Policy`] says which ranges a kind of call may reach;
//! - [`Guarded`] is a reqwest client whose resolver ([`GuardedResolver`]) drops every resolved
//!   address the policy refuses, so the address checked is the address connected to (no
//!   second resolution, no DNS-rebinding window). A URL naming a literal address, which
//!   reqwest connects to without asking the resolver, is checked before the request is built.
//!   Redirects are never followed and proxies never used: either would connect somewhere not
//!   checked here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A receiver or device that has not accepted the connection by then is down; waiting longer
/// only holds up the webhook worker's pass or the car at the barrier.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest any guarded call may take; callers set shorter ones per request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses of one name tried at most: a name with hundreds of records is not a receiver.
const ADDRS_MAX: usize = 16;

/// A range of addresses that is not the public internet, and so why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// A cloud instance metadata or platform service (credentials are served there).
    Metadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8 ("this network"; 0.0.0.0 reaches the host itself), ::.
    Unspecified,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (and some clouds' internal services).
    SharedAddress,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 192.0.0.0/24, 2001::/23.
    IetfProtocol,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4, the old 6to4 relays 192.88.99.0/24, 100::/64, and IPv6 outside 2000::/3.
    Reserved,
    /// fc00::/7.
    UniqueLocal,
    /// fec0::/10 (deprecated).
    SiteLocal,
    /// 2001::/32: the tunnelled address is obfuscated and no receiver needs it.
    Teredo,
}

impl Range {
    /// The range with its article, for messages: "a loopback address".
    pub fn described(self) -> &'static str {
        match self {
            Range::Metadata => "a cloud metadata address",
            Range::Loopback => "a loopback address",
            Range::Unspecified => "an unspecified (this-host) address",
            Range::Private => "a private address",
            Range::SharedAddress => "a shared (CGNAT) address",
            Range::LinkLocal => "a link-local address",
            Range::IetfProtocol => "an IETF protocol address",
            Range::Documentation => "a documentation address",
            Range::Benchmarking => "a benchmarking address",
            Range::Multicast => "a multicast address",
            Range::Broadcast => "the broadcast address",
            Range::Reserved => "a reserved address",
            Range::UniqueLocal => "a unique local address",
            Range::SiteLocal => "a site-local address",
            Range::Teredo => "a Teredo address",
        }
    }
}

/// Instance metadata and platform services: AWS, GCP, Azure, Huawei, OpenStack
/// (169.254.169.254), AWS's DNS and ECS task endpoints, Tencent Cloud (169.254.0.23), Alibaba
/// Cloud (100.100.100.200), Oracle Cloud (192.0.0.192), Azure's wire server (168.63.129.16, a
/// public-range address), AWS over IPv6 (fd00:ec2::254, fd00:ec2::23).
const METADATA: [IpAddr; 10] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 253)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 0, 23)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// The IANA special-purpose IPv4 ranges that are not globally reachable, narrower first.
const V4_RANGES: [(Ipv4Net, Range); 16] = [
    (v4(0, 0, 0, 0, 8), Range::Unspecified),
    (v4(10, 0, 0, 0, 8), Range::Private),
    (v4(100, 64, 0, 0, 10), Range::SharedAddress),
    (v4(127, 0, 0, 0, 8), Range::Loopback),
    (v4(169, 254, 0, 0, 16), Range::LinkLocal),
    (v4(172, 16, 0, 0, 12), Range::Private),
    (v4(192, 0, 0, 0, 24), Range::IetfProtocol),
    (v4(192, 0, 2, 0, 24), Range::Documentation),
    (v4(192, 88, 99, 0, 24), Range::Reserved),
    (v4(192, 168, 0, 0, 16), Range::Private),
    (v4(198, 18, 0, 0, 15), Range::Benchmarking),
    (v4(198, 51, 100, 0, 24), Range::Documentation),
    (v4(203, 0, 113, 0, 24), Range::Documentation),
    (v4(224, 0, 0, 0, 4), Range::Multicast),
    (v4(255, 255, 255, 255, 32), Range::Broadcast),
    (v4(240, 0, 0, 0, 4), Range::Reserved),
];

/// The IPv6 ranges inside or beside global unicast that are not globally reachable, narrower
/// first. Whatever is outside 2000::/3 and not listed is [`Range::Reserved`].
const V6_RANGES: [(Ipv6Net, Range); 12] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Range::Loopback),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Range::Unspecified),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Range::Multicast),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Range::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Range::SiteLocal),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Range::UniqueLocal),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Range::Teredo),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Range::Benchmarking),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        Range::Documentation,
    ),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Range::IetfProtocol),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Range::Documentation),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Range::Reserved),
];

const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The non-public range `ip` is in, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    if METADATA.contains(&ip) {
        return Some(Range::Metadata);
    }
    match ip {
        IpAddr::V4(ip) => V4_RANGES
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|&(_, range)| range),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(inner) => classify(IpAddr::V4(inner)),
            None => V6_RANGES
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|&(_, range)| range)
                .or((!GLOBAL_UNICAST.contains(&ip)).then_some(Range::Reserved)),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, where the network would carry it there:
/// mapped `::ffff:a.b.c.d`, translated `::ffff:0:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d` and the local-use `64:ff9b:1::a.b.c.d` (in the /96 form; other forms of
/// the local-use prefix stay [`Range::Reserved`]), and 6to4 `2002:aabb:ccdd::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [_, _, s2, s3, s4, s5, .., l0, l1, l2, l3] = ip.octets();
    let last = Ipv4Addr::new(l0, l1, l2, l3);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None, // unspecified and loopback themselves
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(last),
        [0x64, 0xff9b, 0 | 1, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(s2, s3, s4, s5)),
        _ => None,
    }
}

/// Which ranges a kind of call may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Webhooks: public addresses only.
    Public,
    /// Devices: the compound's own network (private, unique local, shared address space) or
    /// public addresses; never loopback, link-local, metadata or anything else.
    DeviceNetwork,
    /// Local runs and tests (`PARKSHARE_WEBHOOK_PRIVATE_HOSTS=allow`, whose receivers and
    /// simulated cameras listen on loopback): anything but metadata addresses.
    Local,
}

impl Policy {
    /// Webhooks' policy: public, or local where private hosts are allowed.
    pub fn webhooks(private_hosts_allowed: bool) -> Policy {
        if private_hosts_allowed {
            Policy::Local
        } else {
            Policy::Public
        }
    }

    /// Devices' policy: the compound's network, or local where private hosts are allowed.
    pub fn devices(private_hosts_allowed: bool) -> Policy {
        if private_hosts_allowed {
            Policy::Local
        } else {
            Policy::DeviceNetwork
        }
    }

    /// `Err` with the range if calls under this policy may not reach `ip`.
    pub fn check(self, ip: IpAddr) -> Result<(), Range> {
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        let permitted = match (self, range) {
            (_, Range::Metadata) | (Policy::Public, _) => false,
            (Policy::Local, _) => true,
            (Policy::DeviceNetwork, r) => {
                matches!(
                    r,
                    Range::Private | Range::UniqueLocal | Range::SharedAddress
                )
            }
        };
        if permitted {
            Ok(())
        } else {
            Err(range)
        }
    }
}

/// A call not made: its host is, or resolves only to, addresses the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Refused {
    /// The URL's host as written: a name, or the address itself.
    pub host: String,
    /// The (first) refused address.
    pub ip: IpAddr,
    pub range: Range,
}

impl Refused {
    fn describe(&self) -> String {
        let literal = self.host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
        let mut text = if literal {
            format!("{} is {}", self.host, self.range.described())
        } else {
            format!(
                "{} resolves to {}, {}",
                self.host,
                self.ip,
                self.range.described()
            )
        };
        if let IpAddr::V6(v6) = self.ip {
            if let Some(inner) = embedded_v4(v6) {
                text.push_str(&format!(" (it carries {inner})"));
            }
        }
        text
    }
}

/// Checks the host of `url` if it is a literal address (a name is checked when it is
/// resolved, by [`GuardedResolver`]).
pub fn check_literal(url: &url::Url, policy: Policy) -> Result<(), Refused> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) | None => return Ok(()),
    };
    policy.check(ip).map_err(|range| Refused {
        host: url.host_str().unwrap_or_default().to_owned(),
        ip,
        range,
    })
}

/// Resolves with `lookup` and keeps only the addresses `policy` permits; fails with
/// [`Refused`] if none is left.
pub struct GuardedResolver {
    policy: Policy,
    lookup: Arc<dyn Resolve>,
}

impl GuardedResolver {
    pub fn new(policy: Policy, lookup: Arc<dyn Resolve>) -> GuardedResolver {
        GuardedResolver { policy, lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy;
        let resolving = self.lookup.resolve(name);
        Box::pin(async move {
            let mut refused = None;
            let permitted: Vec<SocketAddr> = resolving
                .await?
                .take(ADDRS_MAX)
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(range) => {
                        refused.get_or_insert(Refused {
                            host: host.clone(),
                            ip: addr.ip(),
                            range,
                        });
                        false
                    }
                })
                .collect();
            if permitted.is_empty() {
                return Err(match refused {
                    Some(refused) => refused.into(),
                    None => format!("{host} resolves to no address").into(),
                });
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The operating system's resolver (getaddrinfo, on tokio's blocking pool).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Names answered from a fixed table and never from the network (tests); any other name fails
/// to resolve.
#[derive(Default)]
pub struct StaticResolver(HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, IpAddr)>) -> StaticResolver {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in entries {
            table.entry(name.to_ascii_lowercase()).or_default().push(ip);
        }
        StaticResolver(table)
    }
}

impl Resolve for StaticResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let found = self.0.get(&name.as_str().to_ascii_lowercase()).cloned();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = found.ok_or_else(|| format!("{host} is not in the static table"))?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why a guarded call was not answered.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// Not sent: the policy refuses the host's address (final: asking again changes nothing).
    #[error("not sent: {0}")]
    Refused(Refused),
    #[error("not an http(s) URL with a host")]
    InvalidUrl,
    /// Sent, or tried, and failed: unreachable, timed out, cut off.
    #[error(transparent)]
    Http(reqwest::Error),
}

impl From<reqwest::Error> for OutboundError {
    /// Finds a refusal by [`GuardedResolver`] among the causes (reqwest wraps it as a
    /// connect error).
    fn from(e: reqwest::Error) -> OutboundError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if let Some(refused) = c.downcast_ref::<Refused>() {
                return OutboundError::Refused(refused.clone());
            }
            cause = c.source();
        }
        OutboundError::Http(e)
    }
}

/// A reqwest client that calls only addresses its policy permits.
#[derive(Clone)]
pub struct Guarded {
    http: reqwest::Client,
    policy: Policy,
}

impl Guarded {
    pub fn new(policy: Policy, lookup: Arc<dyn Resolve>) -> reqwest::Result<Guarded> {
        let http = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(policy, lookup))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Guarded { http, policy })
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// A request to `url`, refused here if the URL names a literal address the policy
    /// refuses. Send it with [`Guarded::send`].
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let parsed = url::Url::parse(url).map_err(|_| OutboundError::InvalidUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(OutboundError::InvalidUrl);
        }
        check_literal(&parsed, self.policy).map_err(OutboundError::Refused)?;
        Ok(self.http.request(method, parsed))
    }

    /// Sends `request`; a refusal by the resolver comes back as [`OutboundError::Refused`].
    pub async fn send(
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OutboundError> {
        Ok(request.send().await?)
    }
}

/// The guarded clients the service calls out with.
#[derive(Clone)]
pub struct Clients {
    /// Subscribers' webhooks.
    pub webhooks: Guarded,
    /// Devices' own APIs (the Hikvision barrier call).
    pub devices: Guarded,
}

impl Clients {
    /// Clients resolving names with `lookup` ([`SystemResolver`] in service), under the
    /// policies `PARKSHARE_WEBHOOK_PRIVATE_HOSTS` chooses.
    pub fn new(private_hosts_allowed: bool, lookup: Arc<dyn Resolve>) -> reqwest::Result<Clients> {
        Ok(Clients {
            webhooks: Guarded::new(Policy::webhooks(private_hosts_allowed), lookup.clone())?,
            devices: Guarded::new(Policy::devices(private_hosts_allowed), lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Range::*;

    /// Every address form from the security review (issue 22), and the ranges around them:
    /// address, its range, permitted to webhooks, permitted to devices.
    const TABLE: &[(&str, Option<Range>, bool, bool)] = &[
        // public
        ("93.184.216.34", None, true, true),
        ("8.8.8.8", None, true, true),
        ("2606:4700:4700::1111", None, true, true),
        ("64:ff9b::808:808", None, true, true),
        ("2002:808:808::1", None, true, true),
        // loopback, in every spelling
        ("127.0.0.1", Some(Loopback), false, false),
        ("127.255.255.254", Some(Loopback), false, false),
        ("::1", Some(Loopback), false, false),
        ("::127.0.0.1", Some(Loopback), false, false),
        ("::ffff:127.0.0.1", Some(Loopback), false, false),
        ("::ffff:0:127.0.0.1", Some(Loopback), false, false),
        ("64:ff9b::7f00:1", Some(Loopback), false, false),
        ("2002:7f00:1::", Some(Loopback), false, false),
        // metadata
        ("169.254.169.254", Some(Metadata), false, false),
        ("100.100.100.200", Some(Metadata), false, false),
        ("168.63.129.16", Some(Metadata), false, false),
        ("192.0.0.192", Some(Metadata), false, false),
        ("fd00:ec2::254", Some(Metadata), false, false),
        ("64:ff9b::a9fe:a9fe", Some(Metadata), false, false),
        ("::ffff:169.254.169.254", Some(Metadata), false, false),
        // unspecified
        ("0.0.0.0", Some(Unspecified), false, false),
        ("0.1.2.3", Some(Unspecified), false, false),
        ("::", Some(Unspecified), false, false),
        // private: devices only
        ("10.0.0.7", Some(Private), false, true),
        ("172.16.0.1", Some(Private), false, true),
        ("172.31.255.255", Some(Private), false, true),
        ("192.168.1.64", Some(Private), false, true),
        ("::ffff:10.0.0.1", Some(Private), false, true),
        ("64:ff9b:1::a00:1", Some(Private), false, true),
        ("fd12:3456::64", Some(UniqueLocal), false, true),
        ("fc00::1", Some(UniqueLocal), false, true),
        ("100.64.0.1", Some(SharedAddress), false, true),
        ("100.127.255.254", Some(SharedAddress), false, true),
        // neither
        ("169.254.1.1", Some(LinkLocal), false, false),
        ("fe80::1", Some(LinkLocal), false, false),
        ("198.18.0.1", Some(Benchmarking), false, false),
        ("198.19.255.254", Some(Benchmarking), false, false),
        ("2001:2::1", Some(Benchmarking), false, false),
        ("192.0.0.1", Some(IetfProtocol), false, false),
        ("192.0.0.255", Some(IetfProtocol), false, false),
        ("2001:10::1", Some(IetfProtocol), false, false),
        ("192.0.2.1", Some(Documentation), false, false),
        ("198.51.100.1", Some(Documentation), false, false),
        ("203.0.113.1", Some(Documentation), false, false),
        ("2001:db8::1", Some(Documentation), false, false),
        ("3fff::1", Some(Documentation), false, false),
        ("224.0.0.1", Some(Multicast), false, false),
        ("239.255.255.250", Some(Multicast), false, false),
        ("ff02::1", Some(Multicast), false, false),
        ("::ffff:224.0.0.1", Some(Multicast), false, false),
        ("255.255.255.255", Some(Broadcast), false, false),
        ("240.0.0.1", Some(Reserved), false, false),
        ("192.88.99.1", Some(Reserved), false, false),
        ("100::1", Some(Reserved), false, false),
        ("5f00::1", Some(Reserved), false, false),
        ("64:ff9b:1:7f00:1::", Some(Reserved), false, false),
        ("fec0::1", Some(SiteLocal), false, false),
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            Some(Teredo),
            false,
            false,
        ),
    ];

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_address_form_is_classified_and_judged_by_each_policy() {
        for &(text, range, public, device) in TABLE {
            let ip = ip(text);
            assert_eq!(classify(ip), range, "{text}");
            assert_eq!(Policy::Public.check(ip).is_ok(), public, "{text}, public");
            assert_eq!(
                Policy::DeviceNetwork.check(ip).is_ok(),
                device,
                "{text}, device network"
            );
            assert_eq!(
                Policy::Local.check(ip).is_ok(),
                range != Some(Metadata),
                "{text}, local"
            );
        }
    }

    fn check_url(text: &str, policy: Policy) -> Result<(), Refused> {
        let url = url::Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        check_literal(&url, policy)
    }

    #[test]
    fn literal_addresses_in_urls_are_checked_in_every_spelling() {
        for (text, range) in [
            ("http://127.0.0.1:8080/x", Loopback),
            ("http://2130706433/x", Loopback), // 127.0.0.1 as one number
            ("http://0x7f.1/x", Loopback),
            ("http://[::127.0.0.1]/x", Loopback),
            ("http://[::ffff:7f00:1]/x", Loopback),
            ("http://[64:ff9b::a9fe:a9fe]/latest", Metadata),
            ("http://100.100.100.200/latest/meta-data", Metadata),
            ("http://100.64.0.1/x", SharedAddress),
            ("http://198.18.0.1/x", Benchmarking),
            ("http://192.0.0.8/x", IetfProtocol),
            ("http://224.0.0.1/x", Multicast),
        ] {
            let refused = check_url(text, Policy::Public).err();
            assert_eq!(refused.map(|r| r.range), Some(range), "{text}");
        }
        assert_eq!(
            check_url("http://hooks.example.com/x", Policy::Public),
            Ok(())
        );
        assert_eq!(check_url("http://93.184.216.34/x", Policy::Public), Ok(()));
        assert_eq!(
            check_url("http://192.168.1.64/", Policy::DeviceNetwork),
            Ok(())
        );
        assert!(check_url("http://127.0.0.1/", Policy::DeviceNetwork).is_err());
        assert!(check_url("http://[fe80::1]/", Policy::DeviceNetwork).is_err());
        assert!(check_url("http://169.254.169.254/", Policy::DeviceNetwork).is_err());
    }

    /// The test names: a name in /etc/hosts, nip.io, a metadata name, a mixed answer.
    fn names() -> Arc<dyn Resolve> {
        Arc::new(StaticResolver::new([
            ("evil.test", ip("127.0.0.1")),
            ("127.0.0.1.nip.io", ip("127.0.0.1")),
            ("meta.test", ip("100.100.100.200")),
            ("cgnat.test", ip("100.64.3.4")),
            ("v6.test", ip("::127.0.0.1")),
            ("nat64.test", ip("64:ff9b::a9fe:a9fe")),
            ("camera.test", ip("192.168.1.64")),
            ("mixed.test", ip("10.0.0.1")),
            ("mixed.test", ip("93.184.216.34")),
            ("ok.test", ip("93.184.216.34")),
        ]))
    }

    async fn resolve(policy: Policy, name: &str) -> Result<Vec<IpAddr>, Option<Refused>> {
        let guard = GuardedResolver::new(policy, names());
        let name: Name = name.parse().unwrap_or_else(|_| panic!("{name}"));
        match guard.resolve(name).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(e.downcast_ref::<Refused>().cloned()),
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        for (name, range, device) in [
            ("evil.test", Loopback, false),
            ("127.0.0.1.nip.io", Loopback, false),
            ("meta.test", Metadata, false),
            ("cgnat.test", SharedAddress, true),
            ("v6.test", Loopback, false),
            ("nat64.test", Metadata, false),
            ("camera.test", Private, true),
        ] {
            let refused = resolve(Policy::Public, name).await.err().flatten();
            assert_eq!(
                refused.map(|r| (r.host, r.range)),
                Some((name.to_owned(), range))
            );
            assert_eq!(
                resolve(Policy::DeviceNetwork, name).await.is_ok(),
                device,
                "{name} as a device"
            );
        }
        assert_eq!(
            resolve(Policy::Public, "mixed.test").await,
            Ok(vec![ip("93.184.216.34")]),
            "only the public address of a mixed answer is connected to"
        );
        assert_eq!(
            resolve(Policy::Public, "ok.test").await,
            Ok(vec![ip("93.184.216.34")])
        );
        assert_eq!(
            resolve(Policy::Local, "evil.test").await,
            Ok(vec![ip("127.0.0.1")])
        );
        assert!(resolve(Policy::Local, "meta.test").await.is_err());
    }

    /// Through reqwest: a name resolving to a listening loopback port is refused, never
    /// connected to, and the refusal is recognised among reqwest's causes.
    /// Subscribers' webhooks are mostly https: the client speaks TLS (it did not, and every
    /// https delivery failed before a byte was sent). A listener that answers the TLS hello
    /// with nothing sees the connection, and the error is a failed connection, not a URL the
    /// client cannot send to.
    #[tokio::test]
    async fn https_urls_are_sent_over_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let local = Guarded::new(Policy::Local, names()).unwrap_or_else(|e| panic!("{e}"));
        let request = local
            .request(reqwest::Method::POST, &format!("https://evil.test:{port}/"))
            .unwrap_or_else(|e| panic!("{e}"));
        let sent = tokio::spawn(Guarded::send(request.timeout(Duration::from_millis(500))));
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(matches!(accepted, Ok(Ok(_))), "nothing connected");
        drop(accepted);
        match sent.await {
            Ok(Err(OutboundError::Http(e))) => assert!(!e.is_builder(), "{e:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_name_is_never_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let client = Guarded::new(Policy::Public, names()).unwrap_or_else(|e| panic!("{e}"));
        for url in [
            format!("http://evil.test:{port}/hooks"),
            format!("http://127.0.0.1:{port}/hooks"),
            format!("http://[::ffff:127.0.0.1]:{port}/hooks"),
        ] {
            let outcome = match client.request(reqwest::Method::POST, &url) {
                Ok(request) => Guarded::send(request).await.map(drop),
                Err(e) => Err(e),
            };
            match outcome {
                Err(OutboundError::Refused(r)) => assert_eq!(r.range, Loopback, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "something connected to the listener");
        // The same name under the local policy reaches it: the refusal above was the guard's.
        let local = Guarded::new(Policy::Local, names()).unwrap_or_else(|e| panic!("{e}"));
        let request = local
            .request(reqwest::Method::POST, &format!("http://evil.test:{port}/"))
            .unwrap_or_else(|e| panic!("{e}"));
        let sent = tokio::spawn(Guarded::send(request.timeout(Duration::from_millis(500))));
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(
            matches!(accepted, Ok(Ok(_))),
            "the local client never connected"
        );
        sent.abort();
    }
}
