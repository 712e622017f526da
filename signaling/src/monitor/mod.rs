//! Line-stability monitoring: every connected site's line, scored, kept, shown live
//! and watched for trouble.
//!
//! The SFU reports each peer's line once a second ([`cau_sfu::LinkSample`]); the
//! session that owns the peer hands it here with the site it belongs to. [`Lines`] is
//! the sans-IO core: figures and `now` in; the site's score and level, history rows,
//! events, alerts and dashboard messages out, as [`Effect`]s. [`Monitor`] is its shell:
//! it holds the core behind a mutex and carries the effects out, to the history
//! writer task, the webhook task, the dashboards' broadcast channel and the Prometheus
//! gauges. Nothing here blocks: a slow disk or webhook never reaches a session.

mod history;
pub(crate) mod http;
mod metrics;
pub(crate) mod quality;
mod webhook;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cau_config::MonitoringConfig;
use cau_sfu::{LinkSample, PeerId};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::admission::now_millis;
use crate::line_test::LineTestRecord;
use crate::model::{Millis, Site, Tier, format_time};
pub(crate) use crate::protocol::ClientStats;
use crate::store::Store;
use history::Write;
pub(crate) use history::{Alert, LinkEvent, SampleRow};
pub(crate) use metrics::Metrics;
use quality::{Figures, Level, Scorer};

/// Events and alerts the dashboard's first message carries.
const RECENT_EVENTS: usize = 200;
const RECENT_ALERTS: usize = 100;

/// One site's line as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub(crate) struct SiteLink {
    pub code: String,
    pub name: String,
    pub tier: String,
    /// `connected`, `offline`, or `dropped` (lost during a meeting and not back).
    pub state: String,
    pub level: Option<String>,
    pub score: Option<f64>,
    /// RFC 3339: when something last arrived from the site.
    pub last_seen: Option<String>,
    pub meeting: Option<MeetingView>,
    pub rtt_ms: Option<f64>,
    pub loss_in: Option<f64>,
    pub loss_out: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub bitrate_in: Option<f64>,
    pub bitrate_out: Option<f64>,
    pub bwe_out: Option<f64>,
    pub nacks_in: Option<u64>,
    pub nacks_out: Option<u64>,
    pub keyframe_requests: Option<u64>,
    pub transport: Option<String>,
    pub reconnects: u32,
    /// What the site's browser says of what it receives.
    pub client: Option<ClientStats>,
    pub line_test: Option<LineTestView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct MeetingView {
    pub id: String,
    pub title: String,
}

/// The latest line test of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct LineTestView {
    /// `ready`, `marginal` or `not_ready`.
    pub verdict: String,
    /// RFC 3339.
    pub at: String,
    pub reasons: Vec<String>,
}

impl LineTestView {
    fn new(test: &LineTestRecord) -> LineTestView {
        LineTestView {
            verdict: test.verdict.as_str().to_owned(),
            at: format_time(test.at),
            reasons: test.reasons.iter().map(|r| r.message()).collect(),
        }
    }
}

/// What the dashboards are sent, live.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum LiveMessage {
    Snapshot {
        sites: Vec<SiteLink>,
        events: Vec<LinkEvent>,
        alerts: Vec<Alert>,
    },
    Site {
        // Boxed: a site's figures are several times larger than the other messages.
        site: Box<SiteLink>,
    },
    Event {
        event: LinkEvent,
    },
    Alert {
        alert: Alert,
    },
    Error {
        code: &'static str,
        message: String,
    },
}

/// How a site's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It left on purpose (or the meeting ended).
    Left,
    /// Its media or its socket died.
    Dropped,
}

/// What the core asks the shell to do.
#[derive(Debug)]
pub(crate) enum Effect {
    Live(LiveMessage),
    Store(Write),
    /// Tell the webhook.
    Notify(Alert),
    /// Update the site's Prometheus gauges. Boxed, as in `LiveMessage::Site`.
    Gauges(Box<SiteLink>),
}

/// The sans-IO core: every site's line.
pub(crate) struct Lines {
    config: MonitoringConfig,
    directory: HashMap<String, (String, Tier)>,
    lines: HashMap<String, Line>,
    events: VecDeque<LinkEvent>,
    alerts: VecDeque<Alert>,
    next_alert_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connected,
    Offline,
    Dropped,
}

struct Line {
    state: State,
    /// The connection whose figures count; a stale one's are ignored.
    peer: Option<PeerId>,
    meeting: Option<MeetingView>,
    scorer: Scorer,
    score: Option<f64>,
    level: Option<Level>,
    last_seen: Option<Millis>,
    /// Media has arrived on this connection: until then, silence is not a loss.
    heard_media: bool,
    latest: Option<Latest>,
    window: Window,
    /// Since when the level has been poor or lost, and whether that was alerted.
    bad_since: Option<Millis>,
    alerted: bool,
    reconnects: u32,
    client: Option<ClientStats>,
    line_test: Option<LineTestView>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Latest {
    rtt_ms: Option<f64>,
    loss_in: Option<f64>,
    loss_out: Option<f64>,
    jitter_ms: Option<f64>,
    bitrate_in: f64,
    bitrate_out: f64,
    bwe_out: Option<f64>,
    nacks_in: u64,
    nacks_out: u64,
    keyframe_requests: u64,
}

/// A history sample being gathered.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    started: Option<Millis>,
    seconds: f64,
    bytes_in: u64,
    bytes_out: u64,
    rtt: Mean,
    loss_in: Mean,
    loss_out: Mean,
    jitter_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    count: u32,
}

impl Mean {
    fn add(&mut self, value: Option<f64>) {
        if let Some(value) = value {
            self.sum += value;
            self.count += 1;
        }
    }

    fn get(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / f64::from(self.count))
    }
}

impl Line {
    fn new(expected_video_bitrate: f64) -> Line {
        Line {
            state: State::Offline,
            peer: None,
            meeting: None,
            scorer: Scorer::new(expected_video_bitrate),
            score: None,
            level: None,
            last_seen: None,
            heard_media: false,
            latest: None,
            window: Window::default(),
            bad_since: None,
            alerted: false,
            reconnects: 0,
            client: None,
            line_test: None,
        }
    }
}

impl Lines {
    pub(crate) fn new(config: MonitoringConfig, sites: &[Site], next_alert_id: i64) -> Lines {
        let mut lines = Lines {
            config,
            directory: HashMap::new(),
            lines: HashMap::new(),
            events: VecDeque::new(),
            alerts: VecDeque::new(),
            next_alert_id,
        };
        lines.set_directory(sites);
        lines
    }

    pub(crate) fn set_directory(&mut self, sites: &[Site]) {
        self.directory = sites
            .iter()
            .map(|s| {
                (
                    s.code.as_str().to_owned(),
                    (s.name.as_str().to_owned(), s.tier),
                )
            })
            .collect();
    }

    fn line(&mut self, site: &str) -> &mut Line {
        let expected = self.config.expected_video_kbps as f64 * 1000.0;
        self.lines
            .entry(site.to_owned())
            .or_insert_with(|| Line::new(expected))
    }

    /// A site's media connection came up.
    pub(crate) fn connected(
        &mut self,
        site: &str,
        peer: PeerId,
        meeting: MeetingView,
        now: Millis,
    ) -> Vec<Effect> {
        let expected = self.config.expected_video_kbps as f64 * 1000.0;
        let line = self.line(site);
        let was_dropped = line.state == State::Dropped;
        line.state = State::Connected;
        line.peer = Some(peer);
        line.meeting = Some(meeting.clone());
        line.scorer = Scorer::new(expected);
        line.heard_media = false;
        line.window = Window::default();
        line.bad_since = None;
        line.alerted = false;
        line.last_seen = Some(now);
        if was_dropped {
            line.reconnects += 1;
        }
        let kind = if was_dropped { "reconnected" } else { "joined" };
        let mut effects = Vec::new();
        self.event(
            site,
            kind,
            None,
            None,
            Some(meeting.title),
            now,
            &mut effects,
        );
        self.site_update(site, &mut effects);
        effects
    }

    /// A site's connection ended. A stale peer (the site already reconnected) is ignored.
    pub(crate) fn ended(
        &mut self,
        site: &str,
        peer: PeerId,
        ending: Ending,
        now: Millis,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(line) = self.lines.get_mut(site) else {
            return effects;
        };
        if line.peer != Some(peer) {
            return effects;
        }
        line.peer = None;
        let previous = line.level;
        let meeting = line.meeting.clone();
        match ending {
            Ending::Left => {
                line.state = State::Offline;
                line.meeting = None;
                line.level = None;
                line.score = None;
                line.latest = None;
                self.event(site, "left", None, previous, None, now, &mut effects);
            }
            Ending::Dropped => {
                line.state = State::Dropped;
                line.level = Some(Level::Lost);
                line.score = Some(0.0);
                self.event(
                    site,
                    "dropped",
                    Some(Level::Lost),
                    previous,
                    None,
                    now,
                    &mut effects,
                );
                let name = self.display_name(site);
                let message = match &meeting {
                    Some(m) => format!("{name} lost its connection during \"{}\"", m.title),
                    None => format!("{name} lost its connection"),
                };
                self.alert(
                    site,
                    "dropped",
                    Some(Level::Lost),
                    message,
                    meeting.map(|m| m.id),
                    None,
                    now,
                    &mut effects,
                );
            }
        }
        self.site_update(site, &mut effects);
        effects
    }

    /// One stats interval of a site's line.
    pub(crate) fn sample(
        &mut self,
        site: &str,
        peer: PeerId,
        sample: &LinkSample,
        camera_on: bool,
        now: Millis,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let sample_interval = self.config.sample_interval().as_millis() as Millis;
        let alert_after = self.config.alert_after().as_millis() as Millis;
        let Some(line) = self.lines.get_mut(site) else {
            return effects;
        };
        if line.peer != Some(peer) || sample.interval.is_zero() {
            return effects;
        }
        let seconds = sample.interval.as_secs_f64();
        let heard = sample.transport_bytes_in > 0;
        if heard {
            line.last_seen = Some(now);
        }
        if sample.packets_in > 0 {
            line.heard_media = true;
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        let jitter = sample.jitter_in.max(sample.jitter_out);
        let latest = Latest {
            rtt_ms: ms(sample.rtt),
            loss_in: sample.loss_in.map(f64::from),
            loss_out: sample.loss_out.map(f64::from),
            jitter_ms: ms(jitter),
            bitrate_in: sample.bytes_in as f64 * 8.0 / seconds,
            bitrate_out: sample.bytes_out as f64 * 8.0 / seconds,
            bwe_out: sample.bandwidth_out.map(|b| b as f64),
            nacks_in: sample.nacks_in,
            nacks_out: sample.nacks_out,
            keyframe_requests: sample.keyframe_requests_in + sample.keyframe_requests_out,
        };
        line.latest = Some(latest);
        // Until the first media packet, a quiet connection is still setting up.
        if !line.heard_media {
            return effects;
        }
        let figures = Figures {
            interval: sample.interval,
            loss_in: latest.loss_in,
            loss_out: latest.loss_out,
            rtt: sample.rtt,
            jitter,
            heard: heard && sample.packets_in > 0,
            video_bitrate_in: camera_on.then(|| sample.video_bytes_in as f64 * 8.0 / seconds),
        };
        let (score, level) = line.scorer.update(&figures);
        let previous = line.level;
        line.score = Some(score);
        line.level = Some(level);

        let window = &mut line.window;
        // A window starts where its first second started.
        let started = *window
            .started
            .get_or_insert(now - sample.interval.as_millis() as Millis);
        window.seconds += seconds;
        window.bytes_in += sample.bytes_in;
        window.bytes_out += sample.bytes_out;
        window.rtt.add(latest.rtt_ms);
        window.loss_in.add(latest.loss_in);
        window.loss_out.add(latest.loss_out);
        window.jitter_ms = match (window.jitter_ms, latest.jitter_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if now - started + 500 >= sample_interval {
            let w = std::mem::take(window);
            let row = SampleRow {
                t: now / 1000,
                score,
                level: level.as_str().to_owned(),
                rtt_ms: w.rtt.get(),
                loss_in: w.loss_in.get(),
                loss_out: w.loss_out.get(),
                jitter_ms: w.jitter_ms,
                bitrate_in: Some(w.bytes_in as f64 * 8.0 / w.seconds.max(0.001)),
                bitrate_out: Some(w.bytes_out as f64 * 8.0 / w.seconds.max(0.001)),
            };
            effects.push(Effect::Store(Write::Sample {
                site: site.to_owned(),
                meeting: line.meeting.as_ref().map(|m| m.id.clone()),
                at: now,
                row,
            }));
        }

        let mut raise = None;
        if level.is_bad() {
            let since = *line.bad_since.get_or_insert(now);
            if !line.alerted && now - since >= alert_after {
                line.alerted = true;
                raise = Some((since, line.meeting.as_ref().map(|m| m.id.clone())));
            }
        } else {
            line.bad_since = None;
            line.alerted = false;
        }
        if previous != Some(level) {
            let detail = format!("score {score:.0}");
            self.event(
                site,
                "level",
                Some(level),
                previous,
                Some(detail),
                now,
                &mut effects,
            );
        }
        if let Some((since, meeting)) = raise {
            let name = self.display_name(site);
            let message = format!(
                "{name}: line {} for {} s (score {score:.0})",
                level.as_str(),
                (now - since) / 1000
            );
            let figures = Some(((now - since) / 1000, score.round()));
            self.alert(
                site,
                "degraded",
                Some(level),
                message,
                meeting,
                figures,
                now,
                &mut effects,
            );
        }
        self.site_update(site, &mut effects);
        effects
    }

    pub(crate) fn client_stats(&mut self, site: &str, peer: PeerId, stats: ClientStats) {
        if let Some(line) = self.lines.get_mut(site)
            && line.peer == Some(peer)
        {
            line.client = Some(stats);
        }
    }

    pub(crate) fn line_test(&mut self, site: &str, view: LineTestView) -> Vec<Effect> {
        self.line(site).line_test = Some(view);
        let mut effects = Vec::new();
        self.site_update(site, &mut effects);
        effects
    }

    /// Every site of the directory, and any connected site no longer in it.
    pub(crate) fn snapshot(&self) -> LiveMessage {
        let mut codes: Vec<&String> = self.directory.keys().collect();
        for code in self.lines.keys() {
            if !self.directory.contains_key(code) {
                codes.push(code);
            }
        }
        let mut sites: Vec<SiteLink> = codes.into_iter().map(|c| self.view(c)).collect();
        sites.sort_by(|a, b| {
            tier_rank(&a.tier)
                .cmp(&tier_rank(&b.tier))
                .then_with(|| a.name.cmp(&b.name))
        });
        LiveMessage::Snapshot {
            sites,
            events: self.events.iter().cloned().collect(),
            alerts: self.alerts.iter().cloned().collect(),
        }
    }

    pub(crate) fn view(&self, site: &str) -> SiteLink {
        let (name, tier) = self
            .directory
            .get(site)
            .map(|(n, t)| (n.clone(), tier_name(*t)))
            .unwrap_or_else(|| (site.to_owned(), "commune"));
        let line = self.lines.get(site);
        let latest = line
            .and_then(|l| l.latest)
            .filter(|_| line.is_some_and(|l| l.state == State::Connected));
        SiteLink {
            code: site.to_owned(),
            name,
            tier: tier.to_owned(),
            state: match line.map(|l| l.state) {
                Some(State::Connected) => "connected",
                Some(State::Dropped) => "dropped",
                _ => "offline",
            }
            .to_owned(),
            level: line.and_then(|l| l.level).map(|l| l.as_str().to_owned()),
            score: line.and_then(|l| l.score).map(|s| s.round()),
            last_seen: line.and_then(|l| l.last_seen).map(format_time),
            meeting: line.and_then(|l| l.meeting.clone()),
            rtt_ms: latest.and_then(|l| l.rtt_ms),
            loss_in: latest.and_then(|l| l.loss_in),
            loss_out: latest.and_then(|l| l.loss_out),
            jitter_ms: latest.and_then(|l| l.jitter_ms),
            bitrate_in: latest.map(|l| l.bitrate_in),
            bitrate_out: latest.map(|l| l.bitrate_out),
            bwe_out: latest.and_then(|l| l.bwe_out),
            nacks_in: latest.map(|l| l.nacks_in),
            nacks_out: latest.map(|l| l.nacks_out),
            keyframe_requests: latest.map(|l| l.keyframe_requests),
            // The SFU has one UDP socket; TCP and relays come with ICE-TCP.
            transport: latest.map(|_| "udp".to_owned()),
            reconnects: line.map_or(0, |l| l.reconnects),
            client: line
                .filter(|l| l.state == State::Connected)
                .and_then(|l| l.client.clone()),
            line_test: line.and_then(|l| l.line_test.clone()),
        }
    }

    fn display_name(&self, site: &str) -> String {
        self.directory
            .get(site)
            .map_or_else(|| site.to_owned(), |(name, _)| name.clone())
    }

    fn site_update(&self, site: &str, effects: &mut Vec<Effect>) {
        let view = self.view(site);
        effects.push(Effect::Gauges(Box::new(view.clone())));
        effects.push(Effect::Live(LiveMessage::Site {
            site: Box::new(view),
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        site: &str,
        kind: &str,
        level: Option<Level>,
        previous: Option<Level>,
        detail: Option<String>,
        now: Millis,
        effects: &mut Vec<Effect>,
    ) {
        let event = LinkEvent {
            at: format_time(now),
            site: site.to_owned(),
            kind: kind.to_owned(),
            level: level.map(|l| l.as_str().to_owned()),
            previous: previous.map(|l| l.as_str().to_owned()),
            detail,
        };
        if self.events.len() == RECENT_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        effects.push(Effect::Store(Write::Event {
            at: now,
            event: event.clone(),
        }));
        effects.push(Effect::Live(LiveMessage::Event { event }));
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &mut self,
        site: &str,
        kind: &str,
        level: Option<Level>,
        message: String,
        meeting: Option<String>,
        seconds_and_score: Option<(i64, f64)>,
        now: Millis,
        effects: &mut Vec<Effect>,
    ) {
        self.next_alert_id += 1;
        let alert = Alert {
            id: self.next_alert_id,
            site: site.to_owned(),
            at: format_time(now),
            kind: kind.to_owned(),
            level: level.map(|l| l.as_str().to_owned()),
            message,
            meeting,
            seconds: seconds_and_score.map(|(seconds, _)| seconds),
            score: seconds_and_score.map(|(_, score)| score),
        };
        tracing::warn!(site, kind, "alert: {}", alert.message);
        if self.alerts.len() == RECENT_ALERTS {
            self.alerts.pop_front();
        }
        self.alerts.push_back(alert.clone());
        effects.push(Effect::Store(Write::Alert {
            at: now,
            alert: alert.clone(),
        }));
        effects.push(Effect::Notify(alert.clone()));
        effects.push(Effect::Live(LiveMessage::Alert { alert }));
    }
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Central => "central",
        Tier::Province => "province",
        Tier::Commune => "commune",
    }
}

fn tier_rank(tier: &str) -> u8 {
    match tier {
        "central" => 0,
        "province" => 1,
        _ => 2,
    }
}

/// The shell: the core behind a mutex, and the tasks that carry its effects out.
pub(crate) struct Monitor {
    enabled: bool,
    lines: Mutex<Lines>,
    live: broadcast::Sender<Arc<str>>,
    writes: mpsc::UnboundedSender<Write>,
    webhook: Option<mpsc::UnboundedSender<Alert>>,
    pub(crate) metrics: Metrics,
    store: Store,
}

impl Monitor {
    /// Loads the directory and the alert count, and starts the history writer, the
    /// roll-up timer and the webhook task.
    pub(crate) async fn start(
        config: MonitoringConfig,
        store: Store,
    ) -> anyhow::Result<Arc<Monitor>> {
        let sites = store.sites().await?;
        let (recent_alerts, last_alert_id) =
            history::recent_alerts(store.pool(), RECENT_ALERTS as i64).await?;
        let mut lines = Lines::new(config.clone(), &sites, last_alert_id);
        lines.alerts = recent_alerts.into();
        // Each site's latest line test, so the dashboard shows it after a restart too.
        for site in &sites {
            if let Some(test) = store.line_tests(&site.code, 1).await?.first() {
                lines.line_test(site.code.as_str(), LineTestView::new(test));
            }
        }
        let (writes, write_queue) = mpsc::unbounded_channel();
        tokio::spawn(history::write(store.pool().clone(), write_queue));
        let webhook = (!config.webhook_url.is_empty()).then(|| {
            let (alerts, alert_queue) = mpsc::unbounded_channel();
            tokio::spawn(webhook::deliver(
                config.webhook_url.clone(),
                config.webhook_attempts,
                alert_queue,
            ));
            alerts
        });
        let (live, _) = broadcast::channel(1024);
        let monitor = Arc::new(Monitor {
            enabled: config.enabled,
            lines: Mutex::new(lines),
            live,
            writes,
            webhook,
            metrics: Metrics::new()?,
            store,
        });
        if config.enabled {
            tokio::spawn(maintain(
                Arc::downgrade(&monitor),
                config.raw_retention(),
                config.rollup_retention(),
            ));
        }
        Ok(monitor)
    }

    fn lines(&self) -> MutexGuard<'_, Lines> {
        // A panic while holding the lock leaves figures, not invariants: carry on.
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn connected(&self, site: &str, peer: PeerId, meeting: MeetingView) {
        if self.enabled {
            let effects = self.lines().connected(site, peer, meeting, now_millis());
            self.apply(effects);
        }
    }

    pub(crate) fn ended(&self, site: &str, peer: PeerId, ending: Ending) {
        if self.enabled {
            if ending == Ending::Dropped {
                self.metrics.drops.inc();
            }
            let effects = self.lines().ended(site, peer, ending, now_millis());
            self.apply(effects);
        }
    }

    pub(crate) fn sample(&self, site: &str, peer: PeerId, sample: &LinkSample, camera_on: bool) {
        let effects = self
            .lines()
            .sample(site, peer, sample, camera_on, now_millis());
        self.apply(effects);
    }

    pub(crate) fn client_stats(&self, site: &str, peer: PeerId, stats: ClientStats) {
        self.lines().client_stats(site, peer, stats);
    }

    /// A site's line test finished: shown on the dashboard from now on.
    pub(crate) fn record_line_test(&self, test: &LineTestRecord) {
        let view = LineTestView::new(test);
        let effects = self.lines().line_test(test.site.as_str(), view);
        self.apply(effects);
    }

    /// The current state of every site, with the directory read afresh.
    pub(crate) async fn snapshot(&self) -> LiveMessage {
        match self.store.sites().await {
            Ok(sites) => self.lines().set_directory(&sites),
            Err(error) => tracing::warn!(%error, "cannot read the site directory"),
        }
        self.lines().snapshot()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.live.subscribe()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Waits until every line sample, event and alert handed over so far is stored.
    pub(crate) async fn flush(&self) {
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.writes.send(Write::Flush(done)).is_ok() {
            let _ = stored.await;
        }
    }

    fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Live(message) => {
                    if self.live.receiver_count() > 0 {
                        match serde_json::to_string(&message) {
                            Ok(text) => {
                                let _ = self.live.send(text.into());
                            }
                            Err(error) => tracing::error!(%error, "cannot serialize"),
                        }
                    }
                }
                Effect::Store(write) => {
                    let _ = self.writes.send(write);
                }
                Effect::Notify(alert) => {
                    self.metrics.alerts.inc();
                    if let Some(webhook) = &self.webhook {
                        let _ = webhook.send(alert);
                    }
                }
                Effect::Gauges(view) => self.metrics.set_site(&view),
            }
        }
    }
}

/// Rolls the history up once a minute and prunes it, until the monitor is gone.
async fn maintain(
    monitor: std::sync::Weak<Monitor>,
    raw_retention: Duration,
    rollup_retention: Duration,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let Some(monitor) = monitor.upgrade() else {
            return;
        };
        let now = now_millis();
        let _ = monitor.writes.send(Write::Maintain {
            before: now - now % 60_000,
            raw_cutoff: now - raw_retention.as_millis() as Millis,
            rollup_cutoff: now - rollup_retention.as_millis() as Millis,
        });
    }
}

#[cfg(test)]
mod tests;
