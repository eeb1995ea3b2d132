//! Summaries of samples: median and p99 by nearest rank (the value at rank ⌈q·n⌉ of the
//! sorted samples, so every figure reported is a value actually measured), and the time
//! source every benchmark timestamp comes from.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from CLOCK_REALTIME: the clock of bash's `$EPOCHREALTIME`
/// (the agents' stamps) and of the journal's `t`, so that all of them compare directly.
pub(crate) fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A figure's samples, in the unit they were taken in.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub values: Vec<f64>,
}

impl Samples {
    pub fn new(values: Vec<f64>) -> Samples {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        Samples { values }
    }

    pub fn n(&self) -> usize {
        self.values.len()
    }

    /// The nearest-rank quantile `q` (0 < q ≤ 1); NaN without samples.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        let rank = (q * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> f64 {
        self.quantile(0.99)
    }

    pub fn max(&self) -> f64 {
        self.values.last().copied().unwrap_or(f64::NAN)
    }

    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }
}
