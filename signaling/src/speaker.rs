//! A meeting's active speaker, from its sites' voice levels.
//!
//! The SFU reports each site's smoothed voice level when it changes
//! (`PeerEvent::AudioLevel`: 0 silent, up to 127 loudest); [`ActiveSpeaker`] turns those
//! levels into one speaker. Every participant's main screen, and so what the SFU sends
//! each site, follows the speaker, and each change costs a renegotiation and a keyframe:
//! the speaker must therefore change seldom, and never for a cough. Hence hysteresis:
//! - a site takes over only once it has been the loudest for [`TAKEOVER`] without a
//!   break; while the speaker still speaks, the newcomer must also be louder by
//!   [`MARGIN`], so two sites of about the same loudness do not swap back and forth;
//! - the speaker stays through pauses: only after [`SILENCE_HOLD`] of silence is there
//!   no speaker;
//! - a site that leaves, or may no longer be heard, is forgotten at once.
//!
//! Sans-IO like the meeting it serves: levels go in with `now`, and
//! [`ActiveSpeaker::poll_timeout`] says when it next needs the time.

use std::collections::BTreeMap;

use crate::model::Millis;

/// How long a site must be the loudest, without a break, to become the speaker: long
/// enough to pass over a cough or a chair scraping, short enough that the screen
/// follows a new speaker within their first sentence.
pub const TAKEOVER: Millis = 1_000;

/// How long the speaker may be silent and still be the speaker: people pause for breath
/// and thought, and the screen should not flip away and back for it.
pub const SILENCE_HOLD: Millis = 5_000;

/// How much louder than a speaker who still speaks a site must be to take over (the
/// levels are in dB).
pub const MARGIN: u8 = 6;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ActiveSpeaker {
    /// The latest level of every site that is speaking (level above 0).
    levels: BTreeMap<String, u8>,
    current: Option<String>,
    /// The site that would take over, and since when it has been the loudest.
    challenger: Option<(String, Millis)>,
    /// Since when the current speaker has been silent.
    silent_since: Option<Millis>,
}

impl ActiveSpeaker {
    /// The speaker now, if any.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// `site`'s level changed. Returns whether the speaker changed.
    pub fn level(&mut self, site: &str, level: u8, now: Millis) -> bool {
        if level == 0 {
            self.levels.remove(site);
        } else {
            self.levels.insert(site.to_owned(), level);
        }
        self.evaluate(now)
    }

    /// `site` left, or may no longer be heard: it is not speaking, and if it was the
    /// speaker there is none now. Returns whether the speaker changed.
    pub fn forget(&mut self, site: &str, now: Millis) -> bool {
        self.levels.remove(site);
        let was_speaker = self.current.as_deref() == Some(site);
        if was_speaker {
            self.current = None;
            self.silent_since = None;
        }
        self.evaluate(now) || was_speaker
    }

    /// Time passed. Returns whether the speaker changed.
    pub fn handle_timeout(&mut self, now: Millis) -> bool {
        self.evaluate(now)
    }

    /// When [`ActiveSpeaker::handle_timeout`] must next be called, if anything waits.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let takeover = self.challenger.as_ref().map(|(_, since)| since + TAKEOVER);
        let drop = self.silent_since.map(|since| since + SILENCE_HOLD);
        match (takeover, drop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the rules at `now`. Returns whether the speaker changed.
    fn evaluate(&mut self, now: Millis) -> bool {
        let speaker_level = self.speaker_level();
        // The loudest other site; among equals, the first by code, so the outcome does
        // not depend on the order levels arrived in.
        let loudest = self
            .levels
            .iter()
            .filter(|(site, _)| self.current.as_ref() != Some(*site))
            .max_by(|(a, x), (b, y)| x.cmp(y).then_with(|| b.cmp(a)));
        let challenger = loudest
            .filter(|(_, level)| speaker_level == 0 || **level >= speaker_level + MARGIN)
            .map(|(site, _)| site.clone());
        self.challenger = match (challenger, self.challenger.take()) {
            (Some(site), Some((known, since))) if site == known => Some((known, since)),
            (Some(site), _) => Some((site, now)),
            (None, _) => None,
        };

        let mut changed = false;
        if let Some((site, since)) = &self.challenger
            && now >= since + TAKEOVER
        {
            self.current = Some(site.clone());
            self.challenger = None;
            changed = true;
        }
        let silent = self.current.is_some() && self.speaker_level() == 0;
        self.silent_since = match (silent, self.silent_since) {
            (false, _) => None,
            (true, since) => Some(since.unwrap_or(now)),
        };
        if self
            .silent_since
            .is_some_and(|since| now >= since + SILENCE_HOLD)
        {
            self.current = None;
            self.silent_since = None;
            changed = true;
        }
        changed
    }

    fn speaker_level(&self) -> u8 {
        self.current
            .as_ref()
            .and_then(|site| self.levels.get(site))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_000_000;

    /// Runs `steps` of (time after T, site, level) and then advances the clock as the
    /// shell would, to every timeout up to `until`; returns each change of speaker,
    /// with its time after T.
    fn run(steps: &[(Millis, &str, u8)], until: Millis) -> Vec<(Millis, Option<String>)> {
        let mut speaker = ActiveSpeaker::default();
        let mut changes = Vec::new();
        let mut record = |speaker: &ActiveSpeaker, at: Millis| {
            changes.push((at - T, speaker.current().map(str::to_owned)));
        };
        let mut steps = steps.iter().peekable();
        loop {
            let next_step = steps.peek().map(|(at, _, _)| T + at);
            let next_timeout = speaker.poll_timeout();
            let fire_timeout = match (next_timeout, next_step) {
                (Some(t), Some(s)) => t < s,
                (Some(_), None) => true,
                _ => false,
            };
            if fire_timeout {
                let at = next_timeout.unwrap();
                if at > T + until {
                    break;
                }
                if speaker.handle_timeout(at) {
                    record(&speaker, at);
                }
            } else if let Some((at, site, level)) = steps.next() {
                if speaker.level(site, *level, T + at) {
                    record(&speaker, T + at);
                }
            } else {
                break;
            }
        }
        changes
    }

    fn to(site: &str) -> Option<String> {
        Some(site.to_owned())
    }

    #[test]
    fn a_site_must_be_loudest_for_a_second_to_take_over() {
        // Speaks and goes on: the speaker after one second.
        assert_eq!(run(&[(0, "a", 60)], 3_000), vec![(1_000, to("a"))]);
        // A cough (half a second) changes nothing.
        assert_eq!(run(&[(0, "a", 60), (500, "a", 0)], 10_000), vec![]);
        // Level changes while speaking do not restart the count.
        assert_eq!(
            run(&[(0, "a", 40), (300, "a", 70), (600, "a", 55)], 2_000),
            vec![(1_000, to("a"))]
        );
        // Two sites at once: the louder one.
        assert_eq!(
            run(&[(0, "a", 50), (0, "b", 70)], 2_000),
            vec![(1_000, to("b"))]
        );
    }

    #[test]
    fn the_speaker_keeps_the_floor_until_someone_is_clearly_louder() {
        // b speaks as loud as a: a stays.
        assert_eq!(
            run(&[(0, "a", 60), (2_000, "b", 62)], 8_000),
            vec![(1_000, to("a"))]
        );
        // b is clearly louder for a second: b takes over.
        assert_eq!(
            run(&[(0, "a", 60), (2_000, "b", 70)], 8_000),
            vec![(1_000, to("a")), (3_000, to("b"))]
        );
        // a stops, b goes on quietly: b takes over a second after a fell silent.
        assert_eq!(
            run(&[(0, "a", 60), (2_000, "b", 40), (2_500, "a", 0)], 8_000),
            vec![(1_000, to("a")), (3_500, to("b"))]
        );
        // b is louder in bursts shorter than a second: a stays.
        assert_eq!(
            run(
                &[
                    (0, "a", 60),
                    (2_000, "b", 80),
                    (2_800, "b", 0),
                    (3_000, "b", 80),
                    (3_800, "b", 0),
                ],
                8_000
            ),
            vec![(1_000, to("a"))]
        );
    }

    #[test]
    fn silence_drops_the_speaker_only_after_a_while() {
        // A pause of three seconds: still the speaker.
        assert_eq!(
            run(&[(0, "a", 60), (2_000, "a", 0), (5_000, "a", 60)], 20_000),
            vec![(1_000, to("a"))]
        );
        // Silent for good: no speaker five seconds after the last word.
        assert_eq!(
            run(&[(0, "a", 60), (2_000, "a", 0)], 20_000),
            vec![(1_000, to("a")), (7_000, None)]
        );
    }

    #[test]
    fn a_forgotten_speaker_goes_at_once() {
        let mut speaker = ActiveSpeaker::default();
        speaker.level("a", 60, T);
        speaker.level("b", 50, T);
        assert!(speaker.handle_timeout(T + 1_000));
        assert_eq!(speaker.current(), Some("a"));
        assert!(speaker.forget("a", T + 2_000));
        assert_eq!(speaker.current(), None);
        // b, still speaking, takes over a second later.
        assert_eq!(speaker.poll_timeout(), Some(T + 3_000));
        assert!(speaker.handle_timeout(T + 3_000));
        assert_eq!(speaker.current(), Some("b"));
        assert!(!speaker.forget("nobody", T + 3_000));
    }
}
