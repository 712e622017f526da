//! Each publisher's voice level, read from the audio level its packets carry.
//!
//! Browsers put the level of every audio packet in an RTP header extension (RFC 6464,
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level`), in -dBov: 0 is the loudest, 127
//! silence. The SFU reads it from packets it forwards anyway, without decoding them, and
//! tells signaling each publisher's smoothed level ([`crate::PeerEvent::AudioLevel`]);
//! signaling decides from the levels who the active speaker is.
//!
//! [`VoiceMeter`] costs a comparison and two additions per packet, and allocates
//! nothing. Every [`LEVEL_INTERVAL`] the core folds each meter's window into its smoothed
//! level, and reports the level only when it moved by [`REPORT_STEP`] or more, or
//! speech started or stopped: a meeting of silent sites reports nothing at all, a
//! speaking site a few times a second at most.

use std::time::Duration;

/// How often windows are folded into the smoothed levels, and so the fastest a
/// publisher's level is reported. A few times a second is quick enough for a screen that
/// follows the speaker after about a second, and slow enough to keep events rare.
pub(crate) const LEVEL_INTERVAL: Duration = Duration::from_millis(200);

/// A packet at least this loud (-dBov, smaller is louder) is voiced: speech into a
/// browser's microphone, after its automatic gain control, is around -20 to -40 dBov,
/// while a quiet room is below -60 and a disabled microphone sends 127 (digital silence).
const VOICED_DBOV: u8 = 50;

/// The weight of the newest window in the smoothed level: half, so the level follows a
/// voice within two or three windows but one loud packet (a cough, a door) barely moves it.
const SMOOTHING: f32 = 0.5;

/// A smoothed level below this is silence. Speech, with its pauses between syllables,
/// stays well above it (about 40 to 70); the few voiced packets of a click or a short beep
/// stay below.
const SPEAKING_MIN: f32 = 20.0;

/// How much louder (in the level's dB) a site must be than one already heard to take
/// its place among the loudest (`SfuConfig::loudest_audio`).
pub(crate) const KEEP_HEARD_MARGIN: f32 = 6.0;

/// Whether a packet's level (-dBov) is voice rather than a quiet room.
pub(crate) fn is_voiced(dbov: u8) -> bool {
    dbov.min(127) <= VOICED_DBOV
}

/// The smallest change of the level worth telling signaling (in dB, as the level is).
const REPORT_STEP: u8 = 4;

/// One publisher's voice level.
#[derive(Debug, Default)]
pub(crate) struct VoiceMeter {
    /// Audio packets with a level in the current window.
    packets: u32,
    /// The loudness (127 - dBov) of the window's voiced packets, summed; unvoiced packets
    /// count as zero, so the window's level weighs loudness by how much of it is voice.
    voiced_loudness: u32,
    smoothed: f32,
    /// The level last reported, 0 for silence.
    reported: u8,
}

impl VoiceMeter {
    /// Takes one audio packet's level (-dBov, 0 loudest, 127 silence). Returns whether
    /// the packet was voiced, so the caller knows the meter needs its windows folded.
    pub(crate) fn packet(&mut self, dbov: u8) -> bool {
        let dbov = dbov.min(127);
        let voiced = is_voiced(dbov);
        if !voiced && !self.is_active() {
            // At rest nobody folds the windows: counting silence would only make the
            // first window of speech look quieter than it is.
            return false;
        }
        self.packets = self.packets.saturating_add(1);
        if voiced {
            self.voiced_loudness = self.voiced_loudness.saturating_add(u32::from(127 - dbov));
        }
        voiced
    }

    /// Folds the window into the smoothed level and starts a new window. Returns the
    /// level (0 silent, up to 127 loudest) when it is worth reporting.
    pub(crate) fn fold(&mut self) -> Option<u8> {
        // No packet at all (the publisher stopped sending, or its audio is withheld)
        // is silence too.
        let window = match self.packets {
            0 => 0.0,
            packets => self.voiced_loudness as f32 / packets as f32,
        };
        self.packets = 0;
        self.voiced_loudness = 0;
        self.smoothed += (window - self.smoothed) * SMOOTHING;
        let level = if self.smoothed < SPEAKING_MIN {
            if window == 0.0 {
                // Fading out below the threshold: the rest of the decay tells nobody
                // anything, and ending it lets the meter rest.
                self.smoothed = 0.0;
            }
            0
        } else {
            self.smoothed.round().min(127.0) as u8
        };
        let worth = match (self.reported, level) {
            (0, 0) => false,
            (0, _) | (_, 0) => true,
            (reported, level) => reported.abs_diff(level) >= REPORT_STEP,
        };
        if !worth {
            return None;
        }
        self.reported = level;
        Some(level)
    }

    /// The smoothed level (0 silent, up to 127 loudest) while it is speech, else 0.
    pub(crate) fn speaking_level(&self) -> f32 {
        if self.smoothed < SPEAKING_MIN {
            0.0
        } else {
            self.smoothed
        }
    }

    /// Whether the meter still needs its windows folded: it is above silence, or has
    /// yet to report that it went quiet.
    pub(crate) fn is_active(&self) -> bool {
        self.voiced_loudness > 0 || self.smoothed > 0.0 || self.reported != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `windows` windows of ten packets at `dbov` (`None`: no packets at all)
    /// and returns what each fold reported.
    fn run(meter: &mut VoiceMeter, dbov: Option<u8>, windows: usize) -> Vec<Option<u8>> {
        (0..windows)
            .map(|_| {
                if let Some(dbov) = dbov {
                    for _ in 0..10 {
                        meter.packet(dbov);
                    }
                }
                meter.fold()
            })
            .collect()
    }

    #[test]
    fn a_voice_is_reported_rising_then_steady_and_its_end_once() {
        let mut meter = VoiceMeter::default();
        assert_eq!(run(&mut meter, Some(127), 5), vec![None; 5], "silence");
        // A steady tone at -20 dBov: loudness 107, reached by halves.
        let rising = run(&mut meter, Some(20), 10);
        assert_eq!(rising[0], Some(54));
        assert!(rising.iter().flatten().count() <= 5, "{rising:?}");
        assert_eq!(rising[6..], [None; 4], "a steady level is not repeated");
        // The microphone is disabled: digital silence, reported once as 0.
        let falling = run(&mut meter, Some(127), 6);
        assert_eq!(falling.iter().flatten().last(), Some(&0), "{falling:?}");
        assert_eq!(falling.iter().filter(|r| **r == Some(0)).count(), 1);
        assert!(!meter.is_active());
    }

    #[test]
    fn quiet_rooms_clicks_and_missing_packets_are_silence() {
        let mut meter = VoiceMeter::default();
        assert_eq!(run(&mut meter, Some(65), 5), vec![None; 5], "a quiet room");
        // One loud packet in each window of ten: a click.
        for _ in 0..5 {
            meter.packet(10);
            for _ in 0..9 {
                meter.packet(90);
            }
            assert_eq!(meter.fold(), None);
        }
        run(&mut meter, Some(30), 3);
        assert!(meter.is_active());
        // Withheld audio reaches the meter as no packets at all.
        let stopped = run(&mut meter, None, 5);
        assert_eq!(stopped.iter().flatten().last(), Some(&0));
        assert!(!meter.is_active());
    }
}
