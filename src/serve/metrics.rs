//! What `/metrics` reports, in the OpenMetrics text format that Prometheus scrapes
//! (prometheus-client writes it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::ops::verify::Reason;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every result a verification has: valid (`None`), or why not.
const RESULTS: [Option<Reason>; 5] = [
    None,
    Some(Reason::Malformed),
    Some(Reason::Unknown),
    Some(Reason::Expired),
    Some(Reason::WrongProject),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    verifications: Family<Outcome, Counter>,
    duration: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    overloaded: Counter,
    store_errors: Counter,
    pending: Gauge,
    log_dropped: Counter,
    /// [`crate::ui::stderr::dropped`] when last rendered.
    log_dropped_seen: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("autheona");
        let verifications = Family::<Outcome, Counter>::default();
        // Every result from the start, at 0: an alert on `result="expired"` sees a series
        // before the first expired token comes.
        for reason in RESULTS {
            let result = reason.map_or("valid", Reason::as_str);
            let _ = verifications.get_or_create(&Outcome { result });
        }
        registry.register(
            "verifications",
            "Tokens verified, by result",
            verifications.clone(),
        );
        // 50 µs (a cached token) to 0.4 s (a queue of argon2 work, a slow store).
        let duration = Histogram::new(exponential_buckets(0.000_05, 2.0, 14));
        registry.register_with_unit(
            "verification_duration",
            "Time from a token's arrival to its answer",
            Unit::Seconds,
            duration.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "cache_hits",
            "Verifications whose argon2 work the cache spared",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Verifications of a known token id that needed argon2 work",
            cache_misses.clone(),
        );
        let overloaded = Counter::default();
        registry.register(
            "overload_refused",
            "Requests answered 503 at once because too much work was waiting",
            overloaded.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Requests answered 503 because the store could not answer",
            store_errors.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "last_used_pending",
            "Tokens whose last use is noted and not yet written to the store",
            pending.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Lines of stderr (the access log, warnings) dropped because it was not drained",
            log_dropped.clone(),
        );
        Metrics {
            registry,
            log_dropped,
            log_dropped_seen: AtomicU64::new(0),
            verifications,
            duration,
            cache_hits,
            cache_misses,
            overloaded,
            store_errors,
            pending,
        }
    }

    /// A verification answered: valid (`None`) or why not, and how long it took.
    pub fn verified(&self, reason: Option<Reason>, took: Duration) {
        let result = reason.map_or("valid", Reason::as_str);
        self.verifications.get_or_create(&Outcome { result }).inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub fn overloaded(&self) {
        self.overloaded.inc();
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    /// The text `/metrics` answers, with `pending` last-used writes waiting.
    pub fn render(&self, pending: usize) -> String {
        self.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
        let dropped = crate::ui::stderr::dropped();
        // Two renders at once count each dropped line once: the larger total wins.
        let seen = self.log_dropped_seen.fetch_max(dropped, Ordering::Relaxed);
        self.log_dropped.inc_by(dropped.saturating_sub(seen));
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_and_series_is_named_as_documented() {
        let metrics = Metrics::new();
        for reason in RESULTS {
            metrics.verified(reason, Duration::from_micros(70));
        }
        metrics.cache_hit();
        metrics.overloaded();
        let text = metrics.render(3);
        for line in [
            "autheona_verifications_total{result=\"valid\"} 1",
            "autheona_verifications_total{result=\"malformed\"} 1",
            "autheona_verifications_total{result=\"unknown\"} 1",
            "autheona_verifications_total{result=\"expired\"} 1",
            "autheona_verifications_total{result=\"wrong_project\"} 1",
            "autheona_verification_duration_seconds_count 5",
            "autheona_verification_duration_seconds_bucket{le=\"0.0001\"} 5",
            "autheona_cache_hits_total 1",
            "autheona_cache_misses_total 0",
            "autheona_overload_refused_total 1",
            "autheona_last_used_pending 3",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_result_is_there_at_zero_before_any_verification() {
        let text = Metrics::new().render(0);
        for result in ["valid", "malformed", "unknown", "expired", "wrong_project"] {
            let line = format!("autheona_verifications_total{{result=\"{result}\"}} 0");
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
