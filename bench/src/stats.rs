//! Latency samples and their percentiles. Runs are short enough (at most a
//! few hundred thousand samples) to keep every sample and sort: exact
//! percentiles, no histogram resolution to explain.

use std::time::Duration;

use tokio::time::Instant;

/// Latency samples in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<u64>);

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn push_micros(&mut self, us: u64) {
        self.0.push(us);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn percentiles(&mut self) -> Percentiles {
        self.0.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.0.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least q of all at or below it.
            let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
            self.0[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            count: self.0.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

/// Completions counted in consecutive windows of equal length, by the time
/// each completed. A rate is the median window's: one window with a stall
/// (nats-server flushing its store or collecting garbage, another process
/// taking a core) cannot move it, and the spread tells how steady they were.
#[derive(Debug, Clone)]
pub struct Windows {
    from: Instant,
    each: Duration,
    counts: Vec<u64>,
}

impl Windows {
    /// `n` windows of `each`, the first starting at `from`.
    pub fn new(from: Instant, each: Duration, n: usize) -> Self {
        Self {
            from,
            each: each.max(Duration::from_millis(1)),
            counts: vec![0; n.max(1)],
        }
    }

    /// When the last window ends.
    pub fn until(&self) -> Instant {
        self.from + self.each * u32::try_from(self.counts.len()).unwrap_or(u32::MAX)
    }

    /// Whether `at` falls in a window.
    pub fn contains(&self, at: Instant) -> bool {
        at >= self.from && at < self.until()
    }

    /// Counts a completion at `done`; false when it is outside every window.
    pub fn count(&mut self, done: Instant) -> bool {
        let Some(since) = done.checked_duration_since(self.from) else {
            return false;
        };
        let index = usize::try_from(since.as_nanos() / self.each.as_nanos()).unwrap_or(usize::MAX);
        match self.counts.get_mut(index) {
            Some(count) => {
                *count += 1;
                true
            }
            None => false,
        }
    }

    /// Adds another counter's counts, window by window.
    pub fn merge(&mut self, other: &Windows) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// How many windows there are.
    pub fn windows(&self) -> usize {
        self.counts.len()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Each window's rate, per second.
    pub fn rates(&self) -> Vec<f64> {
        let secs = self.each.as_secs_f64();
        self.counts.iter().map(|&c| c as f64 / secs).collect()
    }

    /// The median window's rate (the mean of the middle two for an even
    /// number of windows).
    pub fn median(&self) -> f64 {
        let mut rates = self.rates();
        rates.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        if rates.len() % 2 == 1 {
            rates[mid]
        } else {
            (rates[mid - 1] + rates[mid]) / 2.0
        }
    }

    /// (fastest − slowest) ÷ median, 0 for a single window.
    pub fn spread(&self) -> f64 {
        let rates = self.rates();
        let (lo, hi) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
        let median = self.median();
        if median > 0.0 {
            (hi - lo) / median
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_completions_by_time_and_take_the_median() {
        let from = Instant::now();
        let each = Duration::from_secs(1);
        let mut w = Windows::new(from, each, 3);
        assert_eq!(w.until(), from + Duration::from_secs(3));
        // 10, 40 (a burst) and 20 completions, plus some outside.
        for (window, n) in [(0u32, 10), (1, 40), (2, 20)] {
            for i in 0..n {
                let at = from + each * window + Duration::from_millis(i * 10);
                assert!(w.count(at));
            }
        }
        assert!(!w.count(from + Duration::from_secs(3)), "past the end");
        let mut other = Windows::new(from, each, 3);
        assert!(other.count(from + Duration::from_millis(2500)));
        w.merge(&other);
        assert_eq!(w.total(), 71);
        assert_eq!(w.rates(), vec![10.0, 40.0, 21.0]);
        assert_eq!(w.median(), 21.0);
        assert!((w.spread() - 30.0 / 21.0).abs() < 1e-9);
        let single = Windows::new(from, Duration::from_millis(500), 1);
        assert_eq!(single.median(), 0.0);
        assert_eq!(single.spread(), 0.0);
        assert!(single.contains(from) && !single.contains(single.until()));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Samples::default();
        for us in 1..=1000 {
            s.push_micros(us * 1000);
        }
        let p = s.percentiles();
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_ms, 500.0);
        assert_eq!(p.p99_ms, 990.0);
        assert_eq!(p.p999_ms, 999.0);
        assert_eq!(p.max_ms, 1000.0);
        assert_eq!(Samples::default().percentiles().p99_ms, 0.0);
    }
}
