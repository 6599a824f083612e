//! Python's float-second and `timedelta` arithmetic, reproduced bit for bit.
//!
//! APScheduler's interval trigger works on float POSIX timestamps and its jitter on
//! `timedelta(seconds=float)`; matching its fire times to the microsecond means rounding
//! exactly where CPython rounds.

/// Microseconds per second.
pub(crate) const MICROS: i64 = 1_000_000;

#[cfg(feature = "interval")]
/// `timedelta.total_seconds()`: `micros / 10**6`, correctly rounded as Python's integer true
/// division is (a plain `as f64` first would round twice above 2^53 µs, about 285 years).
pub(crate) fn seconds_from_micros(micros: i64) -> f64 {
    let approx = micros as f64 / 1e6;
    if micros.unsigned_abs() <= 1 << 53 {
        return approx; // exact operands: one IEEE division is correctly rounded
    }
    let mut best = approx;
    for candidate in [
        next_toward(approx, f64::NEG_INFINITY),
        next_toward(approx, f64::INFINITY),
    ] {
        match distance_cmp(candidate, best, micros) {
            std::cmp::Ordering::Less => best = candidate,
            std::cmp::Ordering::Equal if candidate.to_bits() & 1 == 0 => best = candidate,
            _ => {}
        }
    }
    best
}

#[cfg(feature = "interval")]
/// The adjacent float in the direction of `target` (for finite, non-zero `x`).
fn next_toward(x: f64, target: f64) -> f64 {
    let bits = x.to_bits();
    let away_from_zero = (target > x) == (x > 0.0);
    f64::from_bits(if away_from_zero { bits + 1 } else { bits - 1 })
}

#[cfg(feature = "interval")]
/// Compares `|a·10⁶ − m|` with `|b·10⁶ − m|` exactly.
fn distance_cmp(a: f64, b: f64, m: i64) -> std::cmp::Ordering {
    // Both are floats of magnitude ~m/10⁶ > 2^33, so they are integers times 2^e with e ≥ -20;
    // scaling everything by 2^20 makes the comparison exact in i128.
    let scaled = |x: f64| -> i128 {
        let bits = x.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
        let mantissa = ((bits & ((1 << 52) - 1)) | (1 << 52)) as i128;
        let sign = if x < 0.0 { -1 } else { 1 };
        let shift = exponent + 20;
        let magnitude = if shift >= 0 {
            mantissa << shift
        } else {
            mantissa >> -shift
        };
        sign * magnitude * 1_000_000
    };
    let target = (m as i128) << 20;
    (scaled(a) - target).abs().cmp(&(scaled(b) - target).abs())
}

#[cfg(feature = "interval")]
/// C's `round` (half away from zero) followed by CPython's half-to-even correction.
fn round_half_even(x: f64) -> f64 {
    let rounded = x.round();
    if (x - rounded).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        rounded
    }
}

#[cfg(feature = "interval")]
/// `datetime.fromtimestamp(ts)`'s split of a float timestamp into whole microseconds
/// (`_PyTime_DoubleToDenominator` with `ROUND_HALF_EVEN`); `None` when out of range.
pub(crate) fn micros_from_timestamp(timestamp: f64) -> Option<i64> {
    if !timestamp.is_finite() {
        return None;
    }
    let mut whole = timestamp.trunc();
    let mut fraction = round_half_even(timestamp.fract() * 1e6);
    if fraction >= 1e6 {
        fraction -= 1e6;
        whole += 1.0;
    } else if fraction < 0.0 {
        fraction += 1e6;
        whole -= 1.0;
    }
    // Python's datetimes end at year 9999 (2.5e11 s); anything beyond is out of range.
    if whole.abs() > 1e12 {
        return None;
    }
    Some(whole as i64 * MICROS + fraction as i64)
}

/// CPython's `timedelta(...)` constructor for float arguments: each unit's integral part is
/// added exactly, the fractional microseconds are summed as floats and rounded once,
/// half to even, at the end.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TimedeltaBuilder {
    whole: i128,
    leftover: f64,
    overflow: bool,
}

impl TimedeltaBuilder {
    /// Adds `value` units of `unit_micros` microseconds (CPython's `accum`).
    pub(crate) fn add(mut self, value: f64, unit_micros: i64) -> Self {
        if value == 0.0 {
            return self; // CPython skips falsy arguments entirely
        }
        if !value.is_finite() || value.abs() > 1e18 {
            self.overflow = true;
            return self;
        }
        let integral = value.trunc();
        self.whole += integral as i128 * unit_micros as i128;
        let fraction = value.fract();
        if fraction != 0.0 {
            let micros = unit_micros as f64 * fraction;
            self.whole += micros.trunc() as i128;
            self.leftover += micros.fract();
        }
        self
    }

    /// The total in microseconds, or `None` beyond `timedelta`'s range (999,999,999 days) or
    /// beyond what an `i64` of microseconds holds (292,000 years).
    pub(crate) fn finish(self) -> Option<i64> {
        if self.overflow {
            return None;
        }
        let mut total = self.whole;
        if self.leftover != 0.0 {
            let mut whole_us = self.leftover.round();
            if (whole_us - self.leftover).abs() == 0.5 {
                let odd = (total & 1) as f64;
                whole_us = 2.0 * ((self.leftover + odd) * 0.5).round() - odd;
            }
            total += whole_us as i128;
        }
        const LIMIT: i128 = 999_999_999 * 86_400 * MICROS as i128;
        if total.abs() > LIMIT {
            return None;
        }
        i64::try_from(total).ok()
    }
}

/// `timedelta(seconds=value)` in microseconds.
pub(crate) fn micros_from_seconds(value: f64) -> Option<i64> {
    TimedeltaBuilder::default().add(value, MICROS).finish()
}

#[cfg(feature = "interval")]
/// `str(timedelta)`: `0:00:10`, `1 day, 2:00:00`, `-1 day, 23:59:55`, `0:00:00.500000`.
pub(crate) fn format_timedelta(micros: i64) -> String {
    let days = micros.div_euclid(86_400 * MICROS);
    let rest = micros.rem_euclid(86_400 * MICROS);
    let (seconds, fraction) = (rest / MICROS, rest % MICROS);
    let mut out = String::new();
    if days != 0 {
        let plural = if days.abs() != 1 { "s" } else { "" };
        out.push_str(&format!("{days} day{plural}, "));
    }
    out.push_str(&format!(
        "{}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    ));
    if fraction != 0 {
        out.push_str(&format!(".{fraction:06}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_seconds_is_correctly_rounded_beyond_2_pow_53() {
        // 9999-12-31T23:59:59.999999Z: Python's `total_seconds()` gives 253402300800.0.
        assert_eq!(seconds_from_micros(253_402_300_799_999_999), 253402300800.0);
        assert_eq!(seconds_from_micros(1_500_000), 1.5);
        assert_eq!(seconds_from_micros(-1_500_000), -1.5);
        // Values printed by CPython 3.11 for `m / 10**6`.
        for (micros, python) in [
            ((1i64 << 53) + 1, 9007199254.740993),
            ((1 << 55) + 12_345, 36028797018.97631),
            (-(1 << 56) - 777, -72057594037.92871),
            (253_402_300_799_999_937, 253402300799.99994),
        ] {
            assert_eq!(seconds_from_micros(micros), python, "{micros}");
        }
    }

    #[test]
    fn from_timestamp_rounds_half_to_even() {
        assert_eq!(micros_from_timestamp(1.0000005), Some(1_000_001)); // 0.50000000001 µs
        assert_eq!(micros_from_timestamp(0.5), Some(500_000));
        assert_eq!(micros_from_timestamp(-0.5), Some(-500_000));
        assert_eq!(micros_from_timestamp(-1e-7), Some(0));
        assert_eq!(micros_from_timestamp(f64::NAN), None);
    }

    #[test]
    fn timedelta_matches_cpython() {
        // Values printed by CPython 3.11.
        assert_eq!(micros_from_seconds(2.5e-6), Some(2));
        assert_eq!(micros_from_seconds(1.5e-6), Some(2));
        assert_eq!(micros_from_seconds(0.1), Some(100_000));
        let hours = TimedeltaBuilder::default()
            .add(1e-7, MICROS)
            .add(0.1, 3600 * MICROS)
            .finish();
        assert_eq!(hours, Some(360_000_000));
        assert_eq!(micros_from_seconds(f64::INFINITY), None);
        assert_eq!(micros_from_seconds(1e17), None);
    }

    #[test]
    fn formats_like_python() {
        assert_eq!(format_timedelta(10 * MICROS), "0:00:10");
        assert_eq!(format_timedelta(-5 * MICROS), "-1 day, 23:59:55");
        assert_eq!(
            format_timedelta((2 * 86_400 + 1800) * MICROS),
            "2 days, 0:30:00"
        );
        assert_eq!(format_timedelta(86_400 * MICROS), "1 day, 0:00:00");
        assert_eq!(format_timedelta(100_000), "0:00:00.100000");
    }
}
