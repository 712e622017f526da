//! The monitoring core on made-up seconds: levels, history rows, events and alerts.

use std::time::Duration;

use cau_config::Config;
use cau_sfu::{LinkSample, PeerId};

use super::*;

const SITE: &str = "ha-quang";

fn lines() -> Lines {
    let mut config = Config::defaults().monitoring;
    config.webhook_url = String::new();
    Lines::new(config, &[], 0)
}

fn meeting() -> MeetingView {
    MeetingView {
        id: "m1".into(),
        title: "Giao ban".into(),
    }
}

fn second(loss: f32) -> LinkSample {
    LinkSample {
        interval: Duration::from_secs(1),
        rtt: Some(Duration::from_millis(20)),
        loss_in: Some(loss),
        loss_out: Some(loss),
        jitter_in: Some(Duration::from_millis(3)),
        jitter_out: Some(Duration::from_millis(3)),
        bytes_in: 60_000,
        bytes_out: 60_000,
        video_bytes_in: 50_000,
        transport_bytes_in: 61_000,
        packets_in: 100,
        packets_out: 100,
        ..LinkSample::default()
    }
}

fn silence() -> LinkSample {
    LinkSample {
        interval: Duration::from_secs(1),
        ..LinkSample::default()
    }
}

fn stored_samples(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Store(Write::Sample { .. })))
        .count()
}

fn alerts(effects: &[Effect]) -> Vec<&Alert> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(alert) => Some(alert),
            _ => None,
        })
        .collect()
}

#[test]
fn a_clean_line_reads_excellent_and_is_sampled_every_five_seconds() {
    let mut lines = lines();
    let peer = PeerId(1);
    lines.connected(SITE, peer, meeting(), 0);
    let mut rows = 0;
    for s in 1..=20 {
        rows += stored_samples(&lines.sample(SITE, peer, &second(0.0), true, s * 1000));
    }
    assert_eq!(rows, 4);
    let view = lines.view(SITE);
    assert_eq!(view.level.as_deref(), Some("excellent"));
    assert_eq!(view.state, "connected");
    assert_eq!(view.meeting, Some(meeting()));
    assert_eq!(view.bitrate_in, Some(480_000.0));
}

#[test]
fn a_poor_line_alerts_once_after_the_configured_time() {
    let mut lines = lines();
    let peer = PeerId(1);
    lines.connected(SITE, peer, meeting(), 0);
    let mut raised = Vec::new();
    for s in 1..=60 {
        let effects = lines.sample(SITE, peer, &second(0.06), true, s * 1000);
        for alert in alerts(&effects) {
            raised.push((s, alert.kind.clone()));
        }
    }
    assert_eq!(lines.view(SITE).level.as_deref(), Some("poor"));
    // Poor from the first second; alert_after is 30 s by default.
    assert_eq!(raised, vec![(31, "degraded".to_owned())]);
}

#[test]
fn silence_reads_lost_only_once_media_has_flowed() {
    let mut lines = lines();
    let peer = PeerId(1);
    lines.connected(SITE, peer, meeting(), 0);
    // Still setting up: no level yet.
    lines.sample(SITE, peer, &silence(), true, 1000);
    assert_eq!(lines.view(SITE).level, None);
    lines.sample(SITE, peer, &second(0.0), true, 2000);
    lines.sample(SITE, peer, &silence(), true, 3000);
    assert_eq!(lines.view(SITE).level.as_deref(), Some("lost"));
}

#[test]
fn a_drop_alerts_at_once_and_a_return_counts_as_a_reconnection() {
    let mut lines = lines();
    lines.connected(SITE, PeerId(1), meeting(), 0);
    lines.sample(SITE, PeerId(1), &second(0.0), true, 1000);
    let effects = lines.ended(SITE, PeerId(1), Ending::Dropped, 2000);
    let raised = alerts(&effects);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].kind, "dropped");
    assert_eq!(raised[0].meeting.as_deref(), Some("m1"));
    assert_eq!(lines.view(SITE).state, "dropped");
    assert_eq!(lines.view(SITE).level.as_deref(), Some("lost"));

    // A stale connection's end changes nothing.
    lines.connected(SITE, PeerId(2), meeting(), 3000);
    assert!(lines.ended(SITE, PeerId(1), Ending::Left, 3500).is_empty());
    let view = lines.view(SITE);
    assert_eq!((view.state.as_str(), view.reconnects), ("connected", 1));
    let kinds: Vec<&str> = lines.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["joined", "level", "dropped", "reconnected"]);
}

#[test]
fn leaving_is_no_alert() {
    let mut lines = lines();
    lines.connected(SITE, PeerId(1), meeting(), 0);
    lines.sample(SITE, PeerId(1), &second(0.0), true, 1000);
    let effects = lines.ended(SITE, PeerId(1), Ending::Left, 2000);
    assert!(alerts(&effects).is_empty());
    let view = lines.view(SITE);
    assert_eq!((view.state.as_str(), view.level), ("offline", None));
}
