//! Request rate limits: per tenant (after authentication, so nobody spends another tenant's
//! allowance), per client address (before anything else), and the volume of replays a tenant
//! may put back in the delivery queue. Generic cell rate (GCRA) limiters from `governor`, one
//! state per key, in the process: with several instances each enforces its own share.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use ipnet::IpNet;
use uuid::Uuid;

use crate::config::Config;
use crate::error::AppError;

/// The limiters of one process.
#[derive(Debug)]
pub struct RateLimits {
    tenant: Option<DefaultKeyedRateLimiter<Uuid>>,
    /// Request body bytes per tenant, in KiB.
    tenant_bytes: Option<DefaultKeyedRateLimiter<Uuid>>,
    address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    replays: Option<DefaultKeyedRateLimiter<Uuid>>,
    trusted_proxies: Vec<IpNet>,
    /// The most a refusal is held before it is sent (see [`RateLimits::held`]).
    refusal_hold: Duration,
}

/// `per_sec` a second with a burst of twice that; `None` for 0 (off).
fn per_second(per_sec: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(per_sec.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// `bytes_per_sec` in KiB a second, with bursts of twice that but at least one body of
/// `body_limit` bytes; `None` for 0 (off).
fn kib_per_second(bytes_per_sec: u64, body_limit: usize) -> Option<Quota> {
    if bytes_per_sec == 0 {
        return None;
    }
    let kib = |b: u64| u32::try_from(b.div_ceil(1024)).unwrap_or(u32::MAX).max(1);
    let rate = NonZeroU32::new(kib(bytes_per_sec))?;
    let burst = kib(bytes_per_sec.saturating_mul(2)).max(kib(body_limit as u64));
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst)?))
}

/// `per_min` a minute, all of it available at once; `None` for 0 (off).
fn per_minute(per_min: u32) -> Option<Quota> {
    NonZeroU32::new(per_min).map(Quota::per_minute)
}

/// How long until the refused request would be allowed, in whole seconds (at least 1).
fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl RateLimits {
    pub fn from_config(c: &Config) -> Self {
        RateLimits {
            tenant: per_second(c.rate_limit_tenant_per_sec).map(RateLimiter::keyed),
            tenant_bytes: kib_per_second(
                c.rate_limit_tenant_bytes_per_sec,
                c.body_limit_bytes.max(c.upload_body_limit()),
            )
            .map(RateLimiter::keyed),
            address: per_second(c.rate_limit_ip_per_sec).map(RateLimiter::keyed),
            replays: per_minute(c.replay_tenant_per_min).map(RateLimiter::keyed),
            refusal_hold: Duration::from_millis(c.rate_limit_refusal_hold_ms),
            trusted_proxies: c.trusted_proxy_list().unwrap_or_default(),
        }
    }

    /// One request of `tenant` with a body of `body_bytes`, or 429 when its allowance of
    /// requests or of body bytes is spent.
    pub fn tenant(&self, tenant: Uuid, body_bytes: u64) -> Result<(), AppError> {
        let refused = |limit: &'static str, message: &str, wait: Duration| {
            metrics::counter!("rate_limited_total", "limit" => limit).increment(1);
            AppError::TooManyRequests {
                message: message.into(),
                retry_after_secs: retry_after(wait),
            }
        };
        if let Some(limiter) = &self.tenant {
            limiter.check_key(&tenant).map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                refused(
                    "tenant",
                    "Too many requests for this tenant; slow down",
                    wait,
                )
            })?;
        }
        let kib = u32::try_from(body_bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        if let (Some(limiter), Some(kib)) = (&self.tenant_bytes, NonZeroU32::new(kib)) {
            let message = "Too much request data for this tenant; slow down";
            match limiter.check_key_n(&tenant, kib) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Err(refused("tenant_bytes", message, wait));
                }
                // Larger than the burst: the body limit refuses such a body anyway.
                Err(_) => return Err(refused("tenant_bytes", message, Duration::from_secs(1))),
            }
        }
        Ok(())
    }

    /// `refused` (a 429), after holding it for at most the configured hold and never past its
    /// `Retry-After`: a client that retries at once is paced by the hold, and its refused
    /// requests stop costing CPU while they wait (their bodies are not read).
    pub async fn held(&self, refused: AppError) -> AppError {
        if let AppError::TooManyRequests {
            retry_after_secs, ..
        } = &refused
        {
            let hold = self
                .refusal_hold
                .min(Duration::from_secs(*retry_after_secs));
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
        }
        refused
    }

    /// One request from the client at `address`, or 429 when its allowance is spent.
    pub fn address(&self, address: IpAddr) -> Result<(), AppError> {
        let Some(limiter) = &self.address else {
            return Ok(());
        };
        limiter.check_key(&address).map_err(|not_until| {
            metrics::counter!("rate_limited_total", "limit" => "address").increment(1);
            AppError::TooManyRequests {
                message: "Too many requests from this address; slow down".into(),
                retry_after_secs: retry_after(
                    not_until.wait_time_from(DefaultClock::default().now()),
                ),
            }
        })
    }

    /// `deliveries` replayed by `tenant`, or 429 when they exceed what is left of its
    /// allowance for the minute (the caller then writes nothing).
    pub fn replays(&self, tenant: Uuid, deliveries: u64) -> Result<(), AppError> {
        let (Some(limiter), Some(n)) = (
            &self.replays,
            NonZeroU32::new(u32::try_from(deliveries).unwrap_or(u32::MAX)),
        ) else {
            return Ok(());
        };
        let refused = |wait: Option<Duration>| {
            metrics::counter!("rate_limited_total", "limit" => "replays").increment(1);
            AppError::TooManyRequests {
                message: format!(
                    "Replaying {deliveries} deliveries would exceed this tenant's replays per minute; replay a narrower range or wait"
                ),
                retry_after_secs: wait.map_or(60, retry_after),
            }
        };
        match limiter.check_key_n(&tenant, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(Some(
                not_until.wait_time_from(DefaultClock::default().now()),
            ))),
            // More than a whole minute's allowance: never allowed in one call.
            Err(_) => Err(refused(None)),
        }
    }

    /// Whether the address limit is on (the middleware then needs the client's address).
    pub fn limits_addresses(&self) -> bool {
        self.address.is_some()
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    /// address in `X-Forwarded-For` that is not one (read from the right, since a client can
    /// write anything on the left).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => client = ip,
                Ok(ip) => return ip,
                // A hop that is not an address: what lies left of it cannot be trusted.
                Err(_) => return client,
            }
        }
        client
    }

    /// Forgets keys whose allowance is whole again (run now and then, so addresses and
    /// tenants seen once do not stay in memory).
    pub fn forget_idle(&self) {
        for l in [&self.tenant, &self.tenant_bytes, &self.replays]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tenant: u32, ip: u32, replays: u32, trusted: &str) -> RateLimits {
        let c = Config {
            rate_limit_tenant_per_sec: tenant,
            rate_limit_tenant_bytes_per_sec: 0,
            rate_limit_ip_per_sec: ip,
            replay_tenant_per_min: replays,
            trusted_proxies: trusted.into(),
            ..Config::default()
        };
        RateLimits::from_config(&c)
    }

    #[test]
    fn a_tenant_gets_a_burst_of_twice_its_rate_and_others_are_not_touched() {
        let l = limits(5, 0, 0, "");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..10 {
            l.tenant(a, 0).unwrap();
        }
        let Err(AppError::TooManyRequests {
            retry_after_secs, ..
        }) = l.tenant(a, 0)
        else {
            panic!("the eleventh request in a burst is refused");
        };
        assert_eq!(retry_after_secs, 1);
        l.tenant(b, 0)
            .expect("another tenant has its own allowance");
    }

    #[test]
    fn a_tenant_has_an_allowance_of_body_bytes_that_always_fits_one_largest_body() {
        let c = Config {
            rate_limit_tenant_per_sec: 0,
            rate_limit_tenant_bytes_per_sec: 100 * 1024,
            body_limit_bytes: 1024 * 1024,
            file_max_size_mb: 1,
            ..Config::default()
        };
        let l = RateLimits::from_config(&c);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // The largest body is an upload's: the largest file and 1 MiB more.
        let largest = c.upload_body_limit() as u64;
        assert_eq!(largest, 2 * 1024 * 1024);
        l.tenant(a, largest)
            .expect("one body of the largest size fits the burst");
        let Err(AppError::TooManyRequests { message, .. }) = l.tenant(a, 200 * 1024) else {
            panic!("the allowance is spent");
        };
        assert_eq!(message, "Too much request data for this tenant; slow down");
        l.tenant(a, 0)
            .expect("a request without a body costs no bytes");
        l.tenant(b, largest).expect("another tenant has its own");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(0, 0, 0, "");
        for _ in 0..10_000 {
            l.tenant(Uuid::nil(), 1 << 30).unwrap();
            l.address(IpAddr::from([127, 0, 0, 1])).unwrap();
        }
        l.replays(Uuid::nil(), 1_000_000).unwrap();
        assert!(!l.limits_addresses());
    }

    #[test]
    fn replays_are_counted_in_deliveries() {
        let l = limits(0, 0, 100, "");
        let t = Uuid::new_v4();
        l.replays(t, 60).unwrap();
        l.replays(t, 0).unwrap();
        assert!(matches!(
            l.replays(t, 60),
            Err(AppError::TooManyRequests { .. })
        ));
        l.replays(t, 40).unwrap();
        let Err(AppError::TooManyRequests {
            retry_after_secs, ..
        }) = l.replays(Uuid::new_v4(), 101)
        else {
            panic!("more than a minute's allowance is refused");
        };
        assert_eq!(retry_after_secs, 60);
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let l = limits(0, 10, 0, "10.0.0.0/8, ::1");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(
            l.client_address(proxy, &h),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_address(stranger, &h), stranger);
        assert_eq!(l.client_address(proxy, &HeaderMap::new()), proxy);
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, junk, 10.0.0.7".parse().unwrap(),
        );
        assert_eq!(
            l.client_address(proxy, &h),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        assert_eq!(
            l.client_address("::1".parse().unwrap(), &h),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::from_millis(2001)), 3);
    }
}
