//! The line test on simulated time: a str0m client runs the test against the core over
//! an in-memory line, clean or capped, and the report must tell the two apart.
//!
//! The line here has a one-way delay and, optionally, a rate in each direction with a
//! queue of bounded delay, so a capped line behaves like a slow modem: packets wait,
//! and drop once the queue is full.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind as StrKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::{
    BULK_LABEL, CONTROL_LABEL, Command, LineTestPlan, LineTestReport, OfferSdp, PROBE_LABEL,
    PeerEvent, PeerId, Sfu, SfuConfig,
};

const SERVER: &str = "10.0.0.1:5000";
const CLIENT: &str = "10.0.2.1:4000";
const ONE_WAY: Duration = Duration::from_millis(15);
const TICK: Duration = Duration::from_millis(1);
/// A capped line's queue holds at most this much delay; beyond, packets drop.
const QUEUE_LIMIT: Duration = Duration::from_millis(300);

fn plan() -> LineTestPlan {
    LineTestPlan {
        probe_interval: Duration::from_millis(20),
        probe_phase: Duration::from_secs(2),
        download: Duration::from_secs(3),
        download_bps: 540_000,
        upload: Duration::from_secs(3),
        upload_bps: 540_000,
    }
}

/// One direction of the line: a fixed delay, and a rate if capped.
struct Way {
    rate_bps: Option<u64>,
    /// When the line finishes sending what is queued.
    free_at: Instant,
}

impl Way {
    /// When a datagram of `bytes` sent at `now` arrives, or `None` if it is dropped.
    fn arrival(&mut self, bytes: usize, now: Instant) -> Option<Instant> {
        let Some(rate) = self.rate_bps else {
            return Some(now + ONE_WAY);
        };
        let start = self.free_at.max(now);
        if start - now > QUEUE_LIMIT {
            return None;
        }
        // IP and UDP headers count against the line's rate, as on a real one.
        let wire = Duration::from_micros((bytes as u64 + 28) * 8 * 1_000_000 / rate);
        self.free_at = start + wire;
        Some(self.free_at + ONE_WAY)
    }
}

struct Line {
    now: Instant,
    sfu: Sfu,
    client: Rtc,
    pending: Option<SdpPendingOffer>,
    audio: Mid,
    video: Mid,
    probe: ChannelId,
    bulk: ChannelId,
    control: ChannelId,
    up: Way,
    down: Way,
    /// Datagrams in flight: (due, to the server?, bytes).
    network: Vec<(Instant, bool, Vec<u8>)>,
    /// The upload the server asked for: (from, until, bits per second).
    upload: Option<(Instant, Instant, u64)>,
    uploaded: u64,
    /// Our data channels open so far.
    opened: usize,
    phases: Vec<String>,
    report: Option<LineTestReport>,
}

impl Line {
    fn new(rate_bps: Option<u64>) -> Line {
        let now = Instant::now();
        let sfu = Sfu::new(SfuConfig {
            candidate_addr: SERVER.parse().unwrap(),
            peer_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
            keyframe_request_interval: Duration::from_millis(500),
            link_stats_interval: None,
            initial_estimate: None,
            tcp_candidate_addr: None,
            loudest_audio: None,
        });
        let mut client = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(now);
        client.add_local_candidate(Candidate::host(CLIENT.parse().unwrap(), "udp").unwrap());
        let mut change = client.sdp_api();
        let audio = change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
        let video = change.add_media(StrKind::Video, Direction::SendOnly, None, None, None);
        let probe = change.add_channel_with_config(ChannelConfig {
            label: PROBE_LABEL.into(),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        let bulk = change.add_channel(BULK_LABEL.into());
        let control = change.add_channel(CONTROL_LABEL.into());
        let (offer, pending) = change.apply().unwrap();
        let mut line = Line {
            now,
            sfu,
            client,
            pending: Some(pending),
            audio,
            video,
            probe,
            bulk,
            control,
            up: Way {
                rate_bps,
                free_at: now,
            },
            down: Way {
                rate_bps,
                free_at: now,
            },
            network: Vec::new(),
            upload: None,
            uploaded: 0,
            opened: 0,
            phases: Vec::new(),
            report: None,
        };
        line.sfu.handle_command(
            Command::AddLineTest {
                peer: PeerId(1),
                offer: OfferSdp::parse(&offer.to_sdp_string()),
                plan: plan(),
            },
            now,
        );
        line
    }

    /// Runs until the report arrives and its `done` message had time to reach the
    /// client, or `limit` of simulated time.
    fn run(&mut self, limit: Duration) -> LineTestReport {
        let mut end = self.now + limit;
        let start = self.now;
        let mut frames = 0u64;
        while self.now < end {
            if self.report.is_some() {
                end = end.min(self.now + Duration::from_millis(500));
            }
            if (self.now - start).as_millis().is_multiple_of(20) {
                self.publish(frames);
                frames += 1;
            }
            self.step();
            self.now += TICK;
        }
        self.report.clone().expect("the line test reported in time")
    }

    fn step(&mut self) {
        let now = self.now;
        let server: SocketAddr = SERVER.parse().unwrap();
        let client: SocketAddr = CLIENT.parse().unwrap();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.network = later;
        for (_, to_server, bytes) in due {
            if to_server {
                self.sfu.handle_datagram(client, &bytes, now);
            } else {
                let receive = Receive::new(Protocol::Udp, server, client, &bytes).unwrap();
                self.client
                    .handle_input(Input::Receive(now, receive))
                    .unwrap();
            }
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        while let Some((_, event)) = self.sfu.poll_event() {
            match event {
                PeerEvent::Answer { sdp } => {
                    let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                    let pending = self.pending.take().unwrap();
                    self.client
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .unwrap();
                }
                PeerEvent::LineTestDone(report) => self.report = Some(report),
                PeerEvent::Offer { .. } => panic!("a line-test peer is never offered to"),
                PeerEvent::TrackPublished { .. } => panic!("a line-test peer publishes nothing"),
                PeerEvent::Gone { reason } => panic!("the line-test peer is gone: {reason:?}"),
                _ => {}
            }
        }
        while let Some(transmit) = self.sfu.poll_transmit() {
            if let Some(at) = self.down.arrival(transmit.contents.len(), now) {
                self.network.push((at, false, transmit.contents.to_vec()));
            }
        }
        self.pace_upload();
        self.client.handle_input(Input::Timeout(now)).unwrap();
        loop {
            match self.client.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    if let Some(at) = self.up.arrival(t.contents.len(), now) {
                        self.network.push((at, true, t.contents.to_vec()));
                    }
                }
                Output::Event(Event::ChannelData(data)) if data.id == self.probe => {
                    // The echo: the probe back, unchanged.
                    let mut channel = self.client.channel(self.probe).unwrap();
                    let _ = channel.write(true, &data.data).unwrap();
                }
                Output::Event(Event::ChannelOpen(..)) => {
                    self.opened += 1;
                    if self.opened == 3 {
                        let mut channel = self.client.channel(self.control).unwrap();
                        assert!(channel.write(false, br#"{"ready":true}"#).unwrap());
                    }
                }
                Output::Event(Event::ChannelData(data)) if data.id == self.control => {
                    let text = String::from_utf8(data.data).unwrap();
                    if text.contains(r#""phase":"upload""#) {
                        let number = |key: &str| -> u64 {
                            let rest = text.split(key).nth(1).unwrap();
                            let digits: String =
                                rest.chars().take_while(char::is_ascii_digit).collect();
                            digits.parse().unwrap()
                        };
                        let until = now + Duration::from_millis(number(r#""ms":"#));
                        self.upload = Some((now, until, number(r#""kbps":"#) * 1000));
                    }
                    self.phases.push(text);
                }
                Output::Event(_) => {}
            }
        }
    }

    /// Writes upload bytes at the asked pace, keeping half a second of backlog at most.
    fn pace_upload(&mut self) {
        let Some((from, until, bps)) = self.upload else {
            return;
        };
        if self.now >= until {
            return;
        }
        let allowed = bps * (self.now - from).as_micros() as u64 / 8_000_000;
        let mut channel = self.client.channel(self.bulk).unwrap();
        while self.uploaded + 1000 <= allowed && (channel.buffered_amount() as u64) < bps / 16 {
            if !channel.write(true, &[0; 1000]).unwrap() {
                break;
            }
            self.uploaded += 1000;
        }
    }

    /// One 20 ms Opus frame, and a video frame every 100 ms, as a camera and a
    /// microphone would send (at a low rate: the check is that they arrive).
    fn publish(&mut self, count: u64) {
        let now = self.now;
        if let Some(writer) = self.client.writer(self.audio) {
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt());
            if let Some(pt) = pt {
                let time = MediaTime::new(count * 960, Frequency::FORTY_EIGHT_KHZ);
                writer.write(pt, now, time, vec![0x55; 60]).unwrap();
            }
        }
        if count.is_multiple_of(5)
            && let Some(writer) = self.client.writer(self.video)
        {
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt());
            if let Some(pt) = pt {
                let time = MediaTime::from_90khz(count * 20 * 90);
                let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
                frame.resize(600, 0x33);
                writer.write(pt, now, time, frame).unwrap();
            }
        }
    }
}

#[test]
fn clean_line_carries_the_target_rates_with_its_round_trip() {
    let mut line = Line::new(None);
    let report = line.run(Duration::from_secs(20));
    assert!(report.completed, "{report:?}");
    let rtt = report.rtt.expect("answered probes");
    // Two one-way delays, plus SCTP's handling: nothing queues on a clean line.
    assert!(
        rtt >= ONE_WAY * 2 && rtt < ONE_WAY * 2 + Duration::from_millis(10),
        "{report:?}"
    );
    assert!(
        report.jitter.unwrap() < Duration::from_millis(5),
        "{report:?}"
    );
    assert_eq!(report.loss, Some(0.0), "{report:?}");
    // The whole plan: probes every 20 ms over 2 + 3 + 3 s and the settle, less the
    // last second left for echoes.
    assert!(report.probes_sent > 300, "{report:?}");
    assert!(report.download_bps >= 540_000 * 9 / 10, "{report:?}");
    assert!(report.download_bps <= 540_000, "{report:?}");
    assert!(report.upload_bps >= 540_000 * 9 / 10, "{report:?}");
    assert!(
        report.audio_packets > 100 && report.video_packets > 20,
        "{report:?}"
    );
    assert!(report.duration < Duration::from_secs(11), "{report:?}");
    let phases: Vec<&str> = line
        .phases
        .iter()
        .map(|p| p.split('"').nth(3).unwrap_or_default())
        .collect();
    assert_eq!(phases, ["probe", "download", "upload", "done"]);
}

#[test]
fn line_capped_at_200_kbits_measures_what_it_carries() {
    let mut line = Line::new(Some(200_000));
    let report = line.run(Duration::from_secs(20));
    assert!(report.completed, "{report:?}");
    // Each direction carries at most its 200 kbit/s, headers included. The probes, the
    // media and the acknowledgements share it, and SCTP halves its window at each drop
    // from the full queue, so the test's own bytes get well under the cap.
    assert!(report.download_bps < 200_000, "{report:?}");
    assert!(report.download_bps > 50_000, "{report:?}");
    assert!(report.upload_bps < 200_000, "{report:?}");
    assert!(report.upload_bps > 50_000, "{report:?}");
    // Under load the queue fills: the round trip grows well past the line's own.
    assert!(
        report.rtt.unwrap() > ONE_WAY * 2 + Duration::from_millis(50),
        "{report:?}"
    );
    assert!(
        report.audio_packets > 0 && report.video_packets > 0,
        "{report:?}"
    );
}
