//! `GET /metrics`: Prometheus text, from the `prometheus` crate's registry.
//!
//! Per-site gauges follow every line sample; server counters are read from the SFU's
//! figures when scraped; the process collector adds CPU, memory and file descriptors.

use cau_sfu::SfuStats;
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::SiteLink;

pub(crate) struct Metrics {
    registry: Registry,
    score: GaugeVec,
    connected: GaugeVec,
    loss: GaugeVec,
    rtt: GaugeVec,
    jitter: GaugeVec,
    bitrate: GaugeVec,
    peers: IntGauge,
    rooms: IntGauge,
    participants: IntGauge,
    sfu: IntCounterVec,
    pub(crate) drops: IntCounter,
    pub(crate) alerts: IntCounter,
    pub(crate) signaling_errors: IntCounter,
}

impl Metrics {
    pub(crate) fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("cau".into()), None)?;
        let site =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        let metrics = Metrics {
            score: site(
                "site_score",
                "Line quality score of the site, 0 to 100",
                &["site"],
            )?,
            connected: site("site_connected", "1 while the site is connected", &["site"])?,
            loss: site(
                "site_loss_ratio",
                "Packet loss of the site's line, 0 to 1, by direction (in: site to server)",
                &["site", "direction"],
            )?,
            rtt: site("site_rtt_seconds", "Round-trip time to the site", &["site"])?,
            jitter: site(
                "site_jitter_seconds",
                "Interarrival jitter of the site's line",
                &["site"],
            )?,
            bitrate: site(
                "site_bitrate_bits_per_second",
                "Media bit rate of the site's line, by direction",
                &["site", "direction"],
            )?,
            peers: IntGauge::new("peers", "Media connections the SFU holds")?,
            rooms: IntGauge::new("rooms", "Rooms and meetings with media")?,
            participants: IntGauge::new("participants", "Participants signaling holds")?,
            sfu: IntCounterVec::new(
                Opts::new("sfu_total", "SFU counters since start, by kind"),
                &["kind"],
            )?,
            drops: IntCounter::new("site_drops_total", "Site connections lost during meetings")?,
            alerts: IntCounter::new("alerts_total", "Line alerts raised")?,
            signaling_errors: IntCounter::new(
                "signaling_errors_total",
                "Signaling messages refused with an error",
            )?,
            registry,
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.score.clone()))?;
        r.register(Box::new(metrics.connected.clone()))?;
        r.register(Box::new(metrics.loss.clone()))?;
        r.register(Box::new(metrics.rtt.clone()))?;
        r.register(Box::new(metrics.jitter.clone()))?;
        r.register(Box::new(metrics.bitrate.clone()))?;
        r.register(Box::new(metrics.peers.clone()))?;
        r.register(Box::new(metrics.rooms.clone()))?;
        r.register(Box::new(metrics.participants.clone()))?;
        r.register(Box::new(metrics.sfu.clone()))?;
        r.register(Box::new(metrics.drops.clone()))?;
        r.register(Box::new(metrics.alerts.clone()))?;
        r.register(Box::new(metrics.signaling_errors.clone()))?;
        // Process metrics keep their conventional unprefixed names.
        prometheus::default_registry()
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .or_else(|e| match e {
                // A second server in one process (tests) finds it registered already.
                prometheus::Error::AlreadyReg => Ok(()),
                e => Err(e),
            })?;
        Ok(metrics)
    }

    pub(crate) fn set_site(&self, view: &SiteLink) {
        let site = view.code.as_str();
        let connected = view.state == "connected";
        self.connected
            .with_label_values(&[site])
            .set(if connected { 1.0 } else { 0.0 });
        self.score
            .with_label_values(&[site])
            .set(view.score.unwrap_or(0.0));
        let set = |gauge: &GaugeVec, labels: &[&str], value: Option<f64>| {
            gauge.with_label_values(labels).set(value.unwrap_or(0.0));
        };
        set(&self.loss, &[site, "in"], view.loss_in);
        set(&self.loss, &[site, "out"], view.loss_out);
        set(&self.rtt, &[site], view.rtt_ms.map(|v| v / 1000.0));
        set(&self.jitter, &[site], view.jitter_ms.map(|v| v / 1000.0));
        set(&self.bitrate, &[site, "in"], view.bitrate_in);
        set(&self.bitrate, &[site, "out"], view.bitrate_out);
    }

    /// The whole text exposition, with the server figures read now.
    pub(crate) fn render(&self, sfu: &SfuStats, participants: usize) -> String {
        self.peers.set(sfu.peers as i64);
        self.rooms.set(sfu.rooms as i64);
        self.participants.set(participants as i64);
        let counters = [
            ("packets_received", sfu.packets_received),
            ("packets_forwarded", sfu.packets_forwarded),
            ("bytes_forwarded", sfu.bytes_forwarded),
            ("packets_withheld", sfu.packets_withheld),
            ("datagrams_malformed", sfu.datagrams_malformed),
            ("datagrams_unroutable", sfu.datagrams_unroutable),
            ("addresses_refused", sfu.addresses_refused),
            ("keyframe_requests_sent", sfu.keyframe_requests_sent),
            ("red_packets_received", sfu.red_packets_received),
        ];
        for (kind, value) in counters {
            let counter = self.sfu.with_label_values(&[kind]);
            // The SFU's figures only grow: add what is new since the last scrape.
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        let mut families = self.registry.gather();
        families.extend(prometheus::default_registry().gather());
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut text) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}
