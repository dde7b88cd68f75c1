//! Jaeger's rate limiter (a credit-balance token bucket) and the rate-limiting sampler built on it.
//!
//! Follows jaeger-client-go's `utils.ReconfigurableRateLimiter` and `RateLimitingSampler`:
//!
//! - the balance starts full (`max_balance`);
//! - [`RateLimiter::check_credit`] pays `item_cost` from the balance when it suffices; otherwise it
//!   first credits `elapsed seconds * credits_per_second` (capped at `max_balance`) and tries
//!   again, so the balance is only refilled when it runs short;
//! - [`RateLimiter::update`] changes the rate in place and pro-rates the balance to the new
//!   maximum, so a strategy refresh does not cause a burst;
//! - the rate-limiting sampler allows `max_traces_per_second` with a balance of
//!   `max(max_traces_per_second, 1)` and charges 1 per trace.
//!
//! Time is `now_nanos` passed in. If it goes backwards nothing is credited and the new time
//! becomes the reference, so a stepped clock neither bursts nor stalls the limiter. The first
//! call takes its time as the reference (the balance is full then anyway).

use super::sampler::{Decision, SamplerType};

/// A token bucket measured in credits: `credits_per_second` accrue up to `max_balance`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimiter {
    credits_per_second: f64,
    balance: f64,
    max_balance: f64,
    last_tick: Option<u64>,
}

/// A finite, non-negative value; anything else (NaN, negative, infinite) becomes 0.
fn sane(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        0.0
    }
}

impl RateLimiter {
    /// A limiter with a full balance. Non-finite or negative arguments count as 0.
    pub fn new(credits_per_second: f64, max_balance: f64) -> Self {
        let max_balance = sane(max_balance);
        RateLimiter {
            credits_per_second: sane(credits_per_second),
            balance: max_balance,
            max_balance,
            last_tick: None,
        }
    }

    /// Pays `item_cost` if the balance (refilled for the time elapsed when short) covers it.
    pub fn check_credit(&mut self, item_cost: f64, now_nanos: u64) -> bool {
        if self.balance >= item_cost {
            self.balance -= item_cost;
            return true;
        }
        self.update_balance(now_nanos);
        if self.balance >= item_cost {
            self.balance -= item_cost;
            return true;
        }
        false
    }

    /// Changes rate and maximum, keeping the balance's fraction of the maximum.
    pub fn update(&mut self, credits_per_second: f64, max_balance: f64, now_nanos: u64) {
        self.update_balance(now_nanos);
        let max_balance = sane(max_balance);
        self.balance = if self.max_balance > 0.0 {
            self.balance * max_balance / self.max_balance
        } else {
            max_balance
        };
        self.credits_per_second = sane(credits_per_second);
        self.max_balance = max_balance;
    }

    fn update_balance(&mut self, now_nanos: u64) {
        let elapsed = match self.last_tick {
            Some(last) => now_nanos.saturating_sub(last),
            None => 0,
        };
        self.last_tick = Some(now_nanos);
        self.balance += elapsed as f64 / 1e9 * self.credits_per_second;
        if self.balance > self.max_balance {
            self.balance = self.max_balance;
        }
    }

    /// Credits accrued per second.
    pub fn credits_per_second(&self) -> f64 {
        self.credits_per_second
    }

    /// The current balance (as of the last refill).
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// The largest balance.
    pub fn max_balance(&self) -> f64 {
        self.max_balance
    }
}

/// Samples at most `max_traces_per_second` (Jaeger `ratelimiting`); bursts up to
/// `max(max_traces_per_second, 1)` traces.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitingSampler {
    max_traces_per_second: f64,
    limiter: RateLimiter,
}

impl RateLimitingSampler {
    /// A sampler allowing `max_traces_per_second` (non-finite or negative count as 0).
    pub fn new(max_traces_per_second: f64) -> Self {
        let rate = sane(max_traces_per_second);
        RateLimitingSampler {
            max_traces_per_second: rate,
            limiter: RateLimiter::new(rate, if rate > 1.0 { rate } else { 1.0 }),
        }
    }

    /// The configured rate (the `sampler.param` tag).
    pub fn max_traces_per_second(&self) -> f64 {
        self.max_traces_per_second
    }

    /// Whether a trace started at `now_nanos` is within the rate (charges 1 if so).
    pub fn is_sampled(&mut self, now_nanos: u64) -> bool {
        self.limiter.check_credit(1.0, now_nanos)
    }

    /// The decision, tagged `sampler.type=ratelimiting`, `sampler.param=max_traces_per_second`.
    pub fn sample(&mut self, now_nanos: u64) -> Decision {
        Decision {
            sampled: self.is_sampled(now_nanos),
            sampler_type: SamplerType::RateLimiting,
            param: self.max_traces_per_second,
            threshold: None,
        }
    }

    /// Changes the rate in place, keeping the pro-rated balance (Jaeger's `Update`).
    pub fn update(&mut self, max_traces_per_second: f64, now_nanos: u64) {
        let rate = sane(max_traces_per_second);
        if rate != self.max_traces_per_second {
            self.limiter
                .update(rate, if rate > 1.0 { rate } else { 1.0 }, now_nanos);
            self.max_traces_per_second = rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const SEC: u64 = 1_000_000_000;

    /// Runs (time in ms, cost) checks and returns the outcomes.
    fn run(limiter: &mut RateLimiter, steps: &[(u64, f64)]) -> Vec<bool> {
        steps
            .iter()
            .map(|&(ms, cost)| limiter.check_credit(cost, 1_000 * SEC + ms * 1_000_000))
            .collect()
    }

    #[test]
    fn token_bucket_like_jaeger() {
        // 2 credits/s, max 2: the balance starts full, then refills at 2/s.
        let mut l = RateLimiter::new(2.0, 2.0);
        let got = run(
            &mut l,
            &[
                (0, 1.0),    // balance 2 -> 1
                (0, 1.0),    // 1 -> 0
                (0, 1.0),    // empty
                (250, 1.0),  // +0.5: still short
                (500, 1.0),  // +0.5 -> 1: paid
                (500, 1.0),  // empty
                (5000, 1.0), // +9 capped at 2: paid
                (5000, 1.0), // paid
                (5000, 1.0), // empty
            ],
        );
        assert_eq!(
            got,
            [true, true, false, false, true, false, true, true, false]
        );
    }

    #[test]
    fn fractional_costs() {
        let mut l = RateLimiter::new(1.0, 1.0);
        let got = run(
            &mut l,
            &[(0, 0.25), (0, 0.5), (0, 0.5), (250, 0.5), (250, 0.5)],
        );
        assert_eq!(got, [true, true, false, true, false]);
    }

    #[test]
    fn time_going_backwards_neither_bursts_nor_stalls() {
        let mut l = RateLimiter::new(1.0, 1.0);
        assert!(l.check_credit(1.0, 100 * SEC));
        assert!(!l.check_credit(1.0, 100 * SEC)); // reference = 100 s
        assert!(!l.check_credit(1.0, 10 * SEC)); // backwards: nothing credited, reference = 10 s
        assert!(!l.check_credit(1.0, 10 * SEC + SEC / 2));
        assert!(l.check_credit(1.0, 11 * SEC)); // one second after the new reference
        assert!(!l.check_credit(1.0, 0));
        assert!(l.balance() >= 0.0);
    }

    #[test]
    fn update_pro_rates_the_balance() {
        let mut l = RateLimiter::new(10.0, 10.0);
        for _ in 0..5 {
            assert!(l.check_credit(1.0, SEC));
        }
        l.update(20.0, 20.0, SEC);
        assert_eq!(l.balance(), 10.0);
        assert_eq!(l.credits_per_second(), 20.0);
        assert_eq!(l.max_balance(), 20.0);
    }

    #[test]
    fn bad_rates_are_zero() {
        for bad in [f64::NAN, -3.0, f64::INFINITY] {
            let mut l = RateLimiter::new(bad, bad);
            assert!(!l.check_credit(1.0, SEC));
            assert!(!l.check_credit(1.0, 100 * SEC));
        }
    }

    #[test]
    fn rate_limiting_sampler() {
        // 0.5 traces/s: the balance is max(0.5, 1) = 1, so one trace, then one per 2 s.
        let mut s = RateLimitingSampler::new(0.5);
        let got: Vec<bool> = [0, 0, SEC, 2 * SEC, 3 * SEC, 4 * SEC]
            .iter()
            .map(|&t| s.is_sampled(t))
            .collect();
        assert_eq!(got, [true, false, false, true, false, true]);
        let d = s.sample(100 * SEC);
        assert!(d.sampled);
        assert_eq!((d.sampler_type, d.param), (SamplerType::RateLimiting, 0.5));

        // 100 traces/s over 10 s of a 1000/s stream keeps 100 + 100*10.
        let mut s = RateLimitingSampler::new(100.0);
        let kept = (0..10_000u64)
            .filter(|i| s.is_sampled(i * SEC / 1000))
            .count();
        assert!((1000..=1100).contains(&kept), "{kept}");
    }
}
