//! Voice levels on simulated time: str0m clients write audio whose packets carry an
//! audio level (RFC 6464), as browsers do. The loud peer's level is reported, soon and
//! rarely; a quiet room, a disabled microphone and a loud peer whose audio is withheld
//! are not reported at all.

use std::cell::Cell;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime};

use super::World;
use crate::{Command, MediaKind, PeerEvent, PeerId};

/// Writes one 20 ms Opus frame from `index` whose packet says `dbov` (-dBov, 0 loudest).
fn speak(world: &mut World, index: usize, dbov: u8, count: u64) {
    let now = world.now;
    let client = &mut world.clients[index];
    let time = MediaTime::new(count * 960, Frequency::FORTY_EIGHT_KHZ);
    let Some(writer) = client.rtc.writer(client.audio) else {
        return;
    };
    let pt = writer
        .payload_params()
        .find(|p| p.spec().codec == Codec::Opus)
        .map(|p| p.pt());
    if let Some(pt) = pt {
        // str0m writes the level as negative decibels; the wire carries its magnitude.
        let level = -(dbov.min(127) as i8);
        writer
            .audio_level(level, dbov <= 50)
            .write(pt, now, time, vec![0xfc; 60])
            .unwrap();
    }
}

/// Every level reported so far for the client at `index`.
fn levels(world: &World, index: usize) -> Vec<u8> {
    world.clients[index]
        .events
        .iter()
        .filter_map(|event| match event {
            PeerEvent::AudioLevel { level } => Some(*level),
            _ => None,
        })
        .collect()
}

#[test]
fn the_loud_peer_is_reported_and_the_quiet_ones_are_not() {
    let mut world = World::new();
    let loud = world.join(1);
    let quiet_room = world.join(1);
    let disabled = world.join(1);
    let withheld = world.join(1);
    let withheld_peer: PeerId = world.clients[withheld].peer;
    world.sfu.handle_command(
        Command::SetAudioForwarding {
            peer: withheld_peer,
            allowed: false,
        },
        world.now,
    );
    world.dispatch_events();

    // Each site's microphone, as -dBov: speech into a microphone, a quiet room, the
    // digital silence of a disabled track, and speech nobody is allowed to hear.
    let mut microphones = [
        (loud, 22),
        (quiet_room, 68),
        (disabled, 127),
        (withheld, 20),
    ];
    let mut count = 0;
    let mut started: Option<Instant> = None;
    // Read after the closure's first use and written in it.
    let first_report: Cell<Option<Duration>> = Cell::new(None);
    let mut run = |world: &mut World, microphones: &[(usize, u8)], duration| {
        world.run(duration, |world| {
            let elapsed = world.now - world.start;
            if elapsed.as_millis() % 20 == 0 && elapsed > Duration::from_millis(500) {
                let now = world.now;
                started.get_or_insert(now);
                for &(index, dbov) in microphones {
                    speak(world, index, dbov, count);
                }
                count += 1;
            }
            if first_report.get().is_none() && !levels(world, loud).is_empty() {
                first_report.set(started.map(|t| world.now - t));
            }
        });
    };
    run(&mut world, &microphones, Duration::from_secs(3));

    let reported = levels(&world, loud);
    let heard = super::frames_from(
        world.client(quiet_room),
        world.clients[loud].peer,
        MediaKind::Audio,
    );
    assert!(
        heard.len() >= 100,
        "the loud peer's audio was not forwarded"
    );
    assert!(
        reported.last().is_some_and(|&level| level >= 95),
        "the loud peer's level: {reported:?}"
    );
    // Rising by halves to about 105, then steady: a handful of reports, not 150.
    assert!(reported.len() <= 8, "too many reports: {reported:?}");
    let first_report = first_report
        .get()
        .expect("the loud peer was never reported");
    assert!(
        first_report <= Duration::from_millis(300),
        "the first report took {first_report:?}"
    );
    for index in [quiet_room, disabled, withheld] {
        assert_eq!(levels(&world, index), vec![], "peer {index} was reported");
    }

    // The loud peer's microphone is disabled: one report of silence, then nothing.
    microphones[0].1 = 127;
    let before = levels(&world, loud).len();
    run(&mut world, &microphones, Duration::from_secs(2));
    let after = levels(&world, loud);
    assert_eq!(after.last(), Some(&0), "{after:?}");
    assert!(
        after.len() - before <= 3,
        "the fade was reported as {after:?}"
    );
    assert!(
        world.sfu.voice_due.is_none(),
        "the meters keep the media thread waking with nobody speaking"
    );
}

#[test]
fn only_the_loudest_sites_and_the_pinned_one_are_heard() {
    let mut world = World::new();
    world.sfu = crate::Sfu::new(crate::SfuConfig {
        loudest_audio: Some(2),
        ..super::test_config()
    });
    let listener = world.join(1);
    let loudest = world.join(1);
    let loud = world.join(1);
    let quieter = world.join(1);
    let chair = world.join(1);
    let chair_peer = world.clients[chair].peer;
    world.sfu.handle_command(
        Command::SetAudioPinned {
            peer: chair_peer,
            pinned: true,
        },
        world.now,
    );
    world.dispatch_events();

    // Three sites speak at once, the third the quietest; the chair speaks quietly too.
    let mut microphones = [
        (listener, 127),
        (loudest, 20),
        (loud, 30),
        (quieter, 45),
        (chair, 45),
    ];
    let mut count = 0;
    let mut run = |world: &mut World, microphones: &[(usize, u8)], duration| {
        world.run(duration, |world| {
            let elapsed = world.now - world.start;
            if elapsed.as_millis() % 20 == 0 && elapsed > Duration::from_millis(500) {
                for &(index, dbov) in microphones {
                    speak(world, index, dbov, count);
                }
                count += 1;
            }
        });
    };
    run(&mut world, &microphones, Duration::from_secs(3));
    let heard = |world: &World, index: usize| {
        super::frames_from(
            world.client(listener),
            world.clients[index].peer,
            MediaKind::Audio,
        )
        .len()
    };
    // 2.5 s of speech is 125 packets.
    assert!(heard(&world, loudest) >= 100, "{}", heard(&world, loudest));
    assert!(heard(&world, loud) >= 100, "{}", heard(&world, loud));
    assert!(
        heard(&world, chair) >= 100,
        "the pinned chair: {}",
        heard(&world, chair)
    );
    assert_eq!(heard(&world, quieter), 0, "the third voice was forwarded");

    // The loudest falls silent: within a second the quieter site takes its place.
    microphones[1].1 = 127;
    let before = heard(&world, quieter);
    run(&mut world, &microphones, Duration::from_secs(3));
    let taken_over = heard(&world, quieter) - before;
    assert!(
        taken_over >= 100,
        "the quieter site got {taken_over} packets through once a place was free"
    );
    // The loudest speaks again: louder by more than the margin, it takes back a place
    // from the quietest of those heard, and its stream goes on where it stopped.
    microphones[1].1 = 20;
    let (loudest_before, quieter_before) = (heard(&world, loudest), heard(&world, quieter));
    run(&mut world, &microphones, Duration::from_secs(3));
    let back = heard(&world, loudest) - loudest_before;
    assert!(
        back >= 100,
        "the loudest got {back} packets through on its return"
    );
    // The smoothed level needs a few windows to rise past the quieter's: under a second.
    let quieter_after = heard(&world, quieter) - quieter_before;
    assert!(
        quieter_after < 50,
        "the quietest kept its place: {quieter_after} packets"
    );
    // What the SFU chose not to send is not loss: the listener's receiver finds the
    // loudest's stream contiguous across the second and a half it was not forwarded.
    let gaps = &world.client(listener).audio_gaps;
    assert!(
        gaps.is_empty(),
        "audio gaps at the listener, by source: {gaps:?}"
    );
}
