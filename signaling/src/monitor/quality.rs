//! The quality score of a site's line: sans-IO, one figure in, one score out.
//!
//! Each second the SFU reports a site's line ([`cau_sfu::LinkSample`]); [`Scorer`]
//! turns it into a score from 0 to 100 and a [`Level`]. The formula and the reasons
//! for its thresholds are in `docs/monitoring.md`; in short:
//!
//! 1. An E-model (ITU-T G.107) transmission rating R for the site's audio, from the
//!    worse loss of its two directions and a one-way delay made of half the RTT, a
//!    jitter buffer of twice the jitter and 20 ms of packetization.
//! 2. R to a mean opinion score (MOS, 1 to 4.5) by G.107's formula, and MOS to 0–100.
//! 3. Points off when the site's camera is on but its video arrives at less than the
//!    rate a meeting shows it at.
//! 4. Falls fast, recovers slowly: a worse figure is taken at once, a better one
//!    approaches with a 10-second time constant, so a flickering line reads as bad.
//!
//! A second in which nothing at all arrived from the site reads 0, `lost`.

use std::time::Duration;

use serde::Serialize;

/// How good a site's line is, as the dashboard colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Level {
    Lost,
    Poor,
    Good,
    Excellent,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Lost => "lost",
            Level::Poor => "poor",
            Level::Good => "good",
            Level::Excellent => "excellent",
        }
    }

    /// Whether an alert watches this level.
    pub(crate) fn is_bad(self) -> bool {
        self <= Level::Poor
    }
}

/// At or above: `excellent` (MOS 4.0, loss under about 1.5% on a short line).
pub(crate) const EXCELLENT_FROM: f64 = 85.0;
/// At or above: `good` (MOS 3.3, loss under about 4%). Below, with traffic: `poor`.
pub(crate) const GOOD_FROM: f64 = 65.0;
/// How fast a score climbs back: the time constant of its approach.
const RECOVERY: Duration = Duration::from_secs(10);
/// The most points a starved camera costs.
const VIDEO_PENALTY: f64 = 20.0;

/// One second of a site's line, as the scorer needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Figures {
    pub interval: Duration,
    /// Fractions 0..1.
    pub loss_in: Option<f64>,
    pub loss_out: Option<f64>,
    pub rtt: Option<Duration>,
    pub jitter: Option<Duration>,
    /// Whether anything at all (media, RTCP, ICE) arrived from the site.
    pub heard: bool,
    /// Video bit rate from the site, when its camera is on; `None` when it is off.
    pub video_bitrate_in: Option<f64>,
}

/// Scores one site's line over time.
#[derive(Debug, Clone)]
pub(crate) struct Scorer {
    expected_video_bitrate: f64,
    smoothed: Option<f64>,
}

impl Scorer {
    pub(crate) fn new(expected_video_bitrate: f64) -> Scorer {
        Scorer {
            expected_video_bitrate,
            smoothed: None,
        }
    }

    /// Takes one second of figures; returns the smoothed score and its level.
    pub(crate) fn update(&mut self, figures: &Figures) -> (f64, Level) {
        if !figures.heard {
            self.smoothed = Some(0.0);
            return (0.0, Level::Lost);
        }
        let instant = instant_score(figures, self.expected_video_bitrate);
        let smoothed = match self.smoothed {
            None => instant,
            // Falls fast: a worse second counts in full, at once.
            Some(previous) if instant <= previous => instant,
            // Recovers slowly.
            Some(previous) => {
                let step = 1.0 - (-figures.interval.as_secs_f64() / RECOVERY.as_secs_f64()).exp();
                previous + (instant - previous) * step
            }
        };
        self.smoothed = Some(smoothed);
        (smoothed, level_of(smoothed))
    }
}

pub(crate) fn level_of(score: f64) -> Level {
    if score >= EXCELLENT_FROM {
        Level::Excellent
    } else if score >= GOOD_FROM {
        Level::Good
    } else {
        Level::Poor
    }
}

/// The score of one second, before smoothing.
pub(crate) fn instant_score(figures: &Figures, expected_video_bitrate: f64) -> f64 {
    let loss = figures
        .loss_in
        .unwrap_or(0.0)
        .max(figures.loss_out.unwrap_or(0.0))
        .clamp(0.0, 1.0);
    let rtt_ms = figures.rtt.map_or(0.0, |r| r.as_secs_f64() * 1000.0);
    let jitter_ms = figures.jitter.map_or(0.0, |j| j.as_secs_f64() * 1000.0);
    let mos = mos(loss * 100.0, rtt_ms / 2.0 + 2.0 * jitter_ms + 20.0);
    let mut score = (mos - 1.0) / 3.5 * 100.0;
    if let Some(bitrate) = figures.video_bitrate_in
        && expected_video_bitrate > 0.0
    {
        let shortfall = 1.0 - (bitrate / expected_video_bitrate).clamp(0.0, 1.0);
        score -= VIDEO_PENALTY * shortfall;
    }
    score.clamp(0.0, 100.0)
}

/// G.107's mean opinion score for `loss_percent` random packet loss and a one-way
/// delay of `delay_ms`, with Opus's equipment impairment taken as 0 and its packet-loss
/// robustness as 10 (no FEC assumed: FEC helps, so this errs on the strict side).
pub(crate) fn mos(loss_percent: f64, delay_ms: f64) -> f64 {
    const R0: f64 = 93.2;
    const BPL: f64 = 10.0;
    let delay_impairment = 0.024 * delay_ms
        + if delay_ms > 177.3 {
            0.11 * (delay_ms - 177.3)
        } else {
            0.0
        };
    let loss_impairment = 95.0 * loss_percent / (loss_percent + BPL);
    let r = (R0 - delay_impairment - loss_impairment).clamp(0.0, 100.0);
    (1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(loss: f64, rtt_ms: u64, jitter_ms: u64) -> Figures {
        Figures {
            interval: Duration::from_secs(1),
            loss_in: Some(loss),
            loss_out: Some(loss),
            rtt: Some(Duration::from_millis(rtt_ms)),
            jitter: Some(Duration::from_millis(jitter_ms)),
            heard: true,
            video_bitrate_in: None,
        }
    }

    #[test]
    fn a_clean_short_line_is_excellent() {
        let mut scorer = Scorer::new(150_000.0);
        let (score, level) = scorer.update(&second(0.0, 2, 3));
        assert!(score > 95.0, "{score}");
        assert_eq!(level, Level::Excellent);
    }

    #[test]
    fn levels_follow_loss_as_documented() {
        let score = |loss| instant_score(&second(loss, 20, 5), 0.0);
        assert_eq!(level_of(score(0.01)), Level::Excellent, "{}", score(0.01));
        assert_eq!(level_of(score(0.03)), Level::Good, "{}", score(0.03));
        assert_eq!(level_of(score(0.05)), Level::Poor, "{}", score(0.05));
        // 5% loss and 100 ms each way: the mountain line of the monitoring test.
        let mountain = instant_score(&second(0.05, 200, 10), 0.0);
        assert!(mountain < GOOD_FROM - 5.0, "{mountain}");
    }

    #[test]
    fn long_delay_alone_costs_a_level() {
        let far = instant_score(&second(0.0, 700, 0), 0.0);
        assert_eq!(level_of(far), Level::Poor, "{far}");
    }

    #[test]
    fn falls_at_once_and_recovers_over_seconds() {
        let mut scorer = Scorer::new(0.0);
        scorer.update(&second(0.0, 2, 1));
        let (fallen, level) = scorer.update(&second(0.08, 2, 1));
        assert_eq!(level, Level::Poor, "{fallen}");
        let (one_later, _) = scorer.update(&second(0.0, 2, 1));
        assert!(
            one_later < GOOD_FROM,
            "one good second is not enough: {one_later}"
        );
        let mut level = Level::Poor;
        let mut seconds = 1;
        while level != Level::Excellent {
            level = scorer.update(&second(0.0, 2, 1)).1;
            seconds += 1;
            assert!(seconds < 60, "never recovered");
        }
        assert!(seconds >= 8, "recovered in {seconds} s");
    }

    #[test]
    fn silence_is_lost_at_once() {
        let mut scorer = Scorer::new(0.0);
        scorer.update(&second(0.0, 2, 1));
        let silent = Figures {
            heard: false,
            ..second(0.0, 2, 1)
        };
        assert_eq!(scorer.update(&silent), (0.0, Level::Lost));
    }

    #[test]
    fn a_starved_camera_costs_points_and_a_camera_off_does_not() {
        let clean = second(0.0, 2, 1);
        let starved = Figures {
            video_bitrate_in: Some(30_000.0),
            ..clean
        };
        let fed = Figures {
            video_bitrate_in: Some(400_000.0),
            ..clean
        };
        let off = instant_score(&clean, 150_000.0);
        assert!(instant_score(&starved, 150_000.0) < off - 10.0);
        assert_eq!(instant_score(&fed, 150_000.0), off);
    }
}
