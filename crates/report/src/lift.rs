//! Lift against the control group.
//!
//! Lift is the difference in conversion rate, treated minus control, in percentage points.
//! Its 95 % interval is Wald's (the normal approximation, each rate's own variance); the
//! p-value is the two-sided two-proportion z-test with the pooled rate (the null hypothesis:
//! both groups convert alike). Both need a few dozen entries and goals per group to mean much;
//! with none in either group there is no lift.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};
use switchboard_engine::optimize::{ArmTally, two_proportion_p};

/// A treated arm against the control group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    pub arm: String,
    /// Treated minus control conversion, in percentage points.
    pub points: f64,
    /// The 95 % interval of `points`.
    pub low: f64,
    pub high: f64,
    /// `points` relative to the control's conversion, when it converted at all.
    pub relative: Option<f64>,
    /// Two-sided, two-proportion z-test.
    pub p_value: f64,
}

/// The lift of `arm` (`goals` of `entries`) over the control's, if both have entries.
pub fn lift(arm: &str, entries: u64, goals: u64, control: u64, control_goals: u64) -> Option<Lift> {
    if entries == 0 || control == 0 {
        return None;
    }
    let (n1, n2) = (entries as f64, control as f64);
    let (p1, p2) = (goals as f64 / n1, control_goals as f64 / n2);
    let difference = p1 - p2;
    let standard = Normal::standard();
    let z95 = standard.inverse_cdf(0.975);
    let unpooled = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let p_value = two_proportion_p(
        ArmTally { entries, goals },
        ArmTally {
            entries: control,
            goals: control_goals,
        },
    );
    Some(Lift {
        arm: arm.to_owned(),
        points: 100.0 * difference,
        low: 100.0 * (difference - z95 * unpooled),
        high: 100.0 * (difference + z95 * unpooled),
        relative: (p2 > 0.0).then(|| difference / p2),
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textbook case: 200 of 1000 against 150 of 1000.
    #[test]
    fn a_known_case_gives_the_textbook_figures() {
        let l = lift("a", 1000, 200, 1000, 150).unwrap();
        assert!((l.points - 5.0).abs() < 1e-9);
        // se = sqrt(.2*.8/1000 + .15*.85/1000) = 0.016956; 1.96 se = 3.3234 points.
        assert!((l.low - 1.6766).abs() < 1e-3, "{l:?}");
        assert!((l.high - 8.3234).abs() < 1e-3, "{l:?}");
        // Pooled .175: se = 0.016993, z = 2.9424, p = 0.00326.
        assert!((l.p_value - 0.00326).abs() < 1e-4, "{l:?}");
        assert!((l.relative.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn no_control_group_no_lift_and_equal_rates_no_difference() {
        assert_eq!(lift("a", 10, 1, 0, 0), None);
        let same = lift("a", 500, 50, 500, 50).unwrap();
        assert_eq!(same.points, 0.0);
        assert!((same.p_value - 1.0).abs() < 1e-12);
        let none = lift("a", 10, 0, 10, 0).unwrap();
        assert_eq!((none.p_value, none.relative), (1.0, None));
    }
}
