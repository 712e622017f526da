//! The line test, on signaling's side: who may run it, its plan, the verdict, and where
//! the result goes.
//!
//! A site runs the test over the signaling socket with its join link's token, within
//! the link's window (from `meetings.join_before_start_minutes` before the start), as
//! `docs/signaling.md` describes: `start_line_test`, then an offer with its camera,
//! microphone and the test's data channels. The SFU measures (`cau_sfu`'s line test);
//! here [`judge`] turns its figures into a [`Verdict`] by the thresholds of
//! `[line_test]` in the configuration, with every reason in plain words. The result
//! goes to the site, into the store (the history IT staff read through the API), to the
//! running meetings that invite the site (so their chair sees it in `meeting_state`),
//! and to the line monitor.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use cau_config::LineTestConfig;
use cau_sfu::{Command, LineTestPlan, LineTestReport, OfferSdp, PeerEvent, PeerId, SfuError};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, interval_at, sleep_until};

use crate::AppState;
use crate::admission::now_millis;
use crate::meetings::Admission;
use crate::model::{MeetingId, Millis, SiteCode};
use crate::protocol::{
    ClientMessage, ErrorCode, LineTestFigures, LineTestPlanView, LineTestReason, LineTestResult,
    MeetingRef, ProtocolError, ServerMessage, SiteRef, parse_client_message,
};

/// How a site's line stands for a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ready,
    /// A meeting works, with less: lower video, some delay, the odd glitch.
    Marginal,
    NotReady,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::Marginal => "marginal",
            Verdict::NotReady => "not_ready",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "ready" => Some(Verdict::Ready),
            "marginal" => Some(Verdict::Marginal),
            "not_ready" => Some(Verdict::NotReady),
            _ => None,
        }
    }
}

/// What is wrong with a line. Each has a stable code the browser words in its own
/// language (`i18n.js`), and an English message for the API and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCode {
    /// The media connection never came up, or failed (UDP blocked, a firewall).
    NoConnection,
    /// The connection came up but the test's data channels never opened.
    Incomplete,
    /// Not one probe came back.
    NoReply,
    /// Less download than a meeting needs (kbit/s).
    DownloadLow,
    /// Less upload than a meeting needs (kbit/s).
    UploadLow,
    /// A long round trip under load (ms).
    RttHigh,
    /// Probes lost (percent).
    LossHigh,
    /// Round trips that vary (ms).
    JitterHigh,
    /// No sound from the microphone reached the server.
    NoAudio,
    /// No picture from the camera reached the server.
    NoVideo,
}

const REASON_CODES: &[(ReasonCode, &str)] = &[
    (ReasonCode::NoConnection, "no_connection"),
    (ReasonCode::Incomplete, "incomplete"),
    (ReasonCode::NoReply, "no_reply"),
    (ReasonCode::DownloadLow, "download_low"),
    (ReasonCode::UploadLow, "upload_low"),
    (ReasonCode::RttHigh, "rtt_high"),
    (ReasonCode::LossHigh, "loss_high"),
    (ReasonCode::JitterHigh, "jitter_high"),
    (ReasonCode::NoAudio, "no_audio"),
    (ReasonCode::NoVideo, "no_video"),
];

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        REASON_CODES
            .iter()
            .find(|(code, _)| *code == self)
            .map_or("", |(_, name)| name)
    }

    pub fn parse(text: &str) -> Option<ReasonCode> {
        REASON_CODES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(code, _)| *code)
    }
}

/// One reason a line is not ready, or only marginal.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub code: ReasonCode,
    /// `Marginal` or `NotReady`.
    pub severity: Verdict,
    /// The figure measured, in the unit of the code (kbit/s, ms, percent).
    pub measured: Option<f64>,
    /// For throughput, what a meeting needs; otherwise the threshold crossed.
    pub limit: Option<f64>,
}

impl Reason {
    /// The reason in plain English words, with its figures.
    pub fn message(&self) -> String {
        let measured = self.measured.unwrap_or_default();
        let limit = self.limit.unwrap_or_default();
        match self.code {
            ReasonCode::NoConnection => {
                "no media connection to the server (UDP may be blocked on this line)".into()
            }
            ReasonCode::Incomplete => "the test's data channels did not open".into(),
            ReasonCode::NoReply => "no probe came back from this line".into(),
            ReasonCode::DownloadLow => {
                format!("download {measured:.0} kbit/s, a meeting needs {limit:.0} kbit/s")
            }
            ReasonCode::UploadLow => {
                format!("upload {measured:.0} kbit/s, a meeting needs {limit:.0} kbit/s")
            }
            ReasonCode::RttHigh => {
                format!("round-trip time {measured:.0} ms, above {limit:.0} ms")
            }
            ReasonCode::LossHigh => format!("{measured:.1}% of probes lost, above {limit:.1}%"),
            ReasonCode::JitterHigh => format!("jitter {measured:.0} ms, above {limit:.0} ms"),
            ReasonCode::NoAudio => "no sound from the microphone reached the server".into(),
            ReasonCode::NoVideo => "no picture from the camera reached the server".into(),
        }
    }
}

/// A test's figures, in the units people read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The media connection came up and the SFU reported.
    pub connected: bool,
    /// The data channels opened and the whole plan ran.
    pub completed: bool,
    pub rtt_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    pub download_kbps: f64,
    pub upload_kbps: f64,
    pub audio: bool,
    pub video: bool,
    pub duration_ms: i64,
}

impl Figures {
    pub fn from_report(report: &LineTestReport) -> Figures {
        Figures {
            connected: true,
            completed: report.completed,
            rtt_ms: report.rtt.map(|d| d.as_secs_f64() * 1000.0),
            jitter_ms: report.jitter.map(|d| d.as_secs_f64() * 1000.0),
            loss_percent: report.loss.map(|l| f64::from(l) * 100.0),
            download_kbps: report.download_bps as f64 / 1000.0,
            upload_kbps: report.upload_bps as f64 / 1000.0,
            audio: report.audio_packets > 0,
            video: report.video_packets > 0,
            duration_ms: i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// One finished test, as stored and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LineTestRecord {
    pub site: SiteCode,
    /// The meeting whose link ran it (none once that meeting is deleted).
    pub meeting: Option<MeetingId>,
    pub at: Millis,
    pub verdict: Verdict,
    /// Worst first.
    pub reasons: Vec<Reason>,
    pub figures: Figures,
    /// What a meeting needed of each direction when the test ran, kbit/s.
    pub download_needed_kbps: u64,
    pub upload_needed_kbps: u64,
}

/// A direction carrying this share of its target is ready: slow start at the phase's
/// beginning and the bytes in flight at its end cost a few percent on any line.
const READY_SHARE: f64 = 0.9;

/// The verdict on `figures` by the thresholds of `config`, and every reason for it,
/// worst first.
pub fn judge(figures: &Figures, config: &LineTestConfig) -> (Verdict, Vec<Reason>) {
    let mut reasons = Vec::new();
    let mut add = |code, severity, measured: Option<f64>, limit: Option<f64>| {
        reasons.push(Reason {
            code,
            severity,
            measured,
            limit,
        })
    };
    if !figures.connected {
        add(ReasonCode::NoConnection, Verdict::NotReady, None, None);
    } else if !figures.completed {
        add(ReasonCode::Incomplete, Verdict::NotReady, None, None);
    } else {
        let throughput = [
            (
                ReasonCode::DownloadLow,
                figures.download_kbps,
                config.download_kbps,
            ),
            (
                ReasonCode::UploadLow,
                figures.upload_kbps,
                config.upload_kbps,
            ),
        ];
        for (code, measured, needed) in throughput {
            let needed = needed as f64;
            let severity = if measured < config.minimum_kbps as f64 {
                Verdict::NotReady
            } else if measured < needed * READY_SHARE {
                Verdict::Marginal
            } else {
                continue;
            };
            add(code, severity, Some(measured), Some(needed));
        }
        match figures.rtt_ms {
            None => add(ReasonCode::NoReply, Verdict::NotReady, None, None),
            Some(rtt) => {
                let limits = (config.rtt_ready_ms as f64, config.rtt_marginal_ms as f64);
                if let Some((severity, limit)) = grade(rtt, limits) {
                    add(ReasonCode::RttHigh, severity, Some(rtt), Some(limit));
                }
            }
        }
        let loss = figures.loss_percent.unwrap_or_default();
        let limits = (config.loss_ready_percent, config.loss_marginal_percent);
        if let Some((severity, limit)) = grade(loss, limits) {
            add(ReasonCode::LossHigh, severity, Some(loss), Some(limit));
        }
        if let Some(jitter) = figures.jitter_ms {
            let limits = (
                config.jitter_ready_ms as f64,
                config.jitter_marginal_ms as f64,
            );
            if let Some((severity, limit)) = grade(jitter, limits) {
                add(ReasonCode::JitterHigh, severity, Some(jitter), Some(limit));
            }
        }
    }
    // A connection that failed tells nothing of the devices; otherwise their RTP
    // either arrived or did not.
    if figures.connected {
        if !figures.audio {
            add(ReasonCode::NoAudio, Verdict::NotReady, None, None);
        }
        // A site without a camera can still take part by voice.
        if !figures.video {
            add(ReasonCode::NoVideo, Verdict::Marginal, None, None);
        }
    }
    // Stable: within a severity, the order above (throughput first) stays.
    reasons.sort_by_key(|reason| std::cmp::Reverse(reason.severity));
    let verdict = reasons.first().map_or(Verdict::Ready, |r| r.severity);
    (verdict, reasons)
}

/// Which side of `(ready, marginal)` a figure that should stay low falls, and the
/// threshold it crossed.
fn grade(value: f64, (ready, marginal): (f64, f64)) -> Option<(Verdict, f64)> {
    if value > marginal {
        Some((Verdict::NotReady, marginal))
    } else if value > ready {
        Some((Verdict::Marginal, ready))
    } else {
        None
    }
}

/// The SFU's plan for one test, from the configuration.
pub fn plan(config: &LineTestConfig) -> LineTestPlan {
    LineTestPlan {
        probe_interval: config.probe_interval(),
        probe_phase: config.probe_phase(),
        download: config.download(),
        download_bps: config.download_kbps * 1000,
        upload: config.upload(),
        upload_bps: config.upload_kbps * 1000,
    }
}

/// The wire form of a record, for the site and the chair.
pub(crate) fn result_message(record: &LineTestRecord) -> LineTestResult {
    let figures = &record.figures;
    LineTestResult {
        verdict: record.verdict.as_str().to_owned(),
        at: record.at,
        reasons: record
            .reasons
            .iter()
            .map(|reason| LineTestReason {
                code: reason.code.as_str().to_owned(),
                severity: reason.severity.as_str().to_owned(),
                measured: reason.measured,
                limit: reason.limit,
                message: reason.message(),
            })
            .collect(),
        figures: LineTestFigures {
            rtt_ms: figures.rtt_ms,
            jitter_ms: figures.jitter_ms,
            loss_percent: figures.loss_percent,
            download_kbps: figures.download_kbps,
            upload_kbps: figures.upload_kbps,
            download_needed_kbps: record.download_needed_kbps,
            upload_needed_kbps: record.upload_needed_kbps,
            audio: figures.audio,
            video: figures.video,
            duration_ms: figures.duration_ms,
        },
    }
}

/// The sites whose line test runs now: one at a time per site, so that a link shared
/// by mistake cannot load the server with many tests of one site.
#[derive(Default)]
pub(crate) struct Running {
    sites: Mutex<HashSet<String>>,
}

impl Running {
    /// Marks `site` as testing, or refuses if it is already.
    fn claim(self: &Arc<Self>, site: &str) -> Option<Claim> {
        let mut sites = self
            .sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sites.insert(site.to_owned()).then(|| Claim {
            running: self.clone(),
            site: site.to_owned(),
        })
    }
}

/// A site's place in [`Running`], given back when dropped, however the test ends.
struct Claim {
    running: Arc<Running>,
    site: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut sites = self
            .running
            .sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sites.remove(&self.site);
    }
}

/// The socket goes quiet this long (not even a ping) and the test is abandoned.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the server pings while the test runs.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Beyond the plan itself: the connection, the channels' opening and the report. The
/// SFU reports an incomplete test after 10 s without channels and drops a peer that
/// never connects after 15 s, so this bound is only hit by a fault.
const REPORT_MARGIN: Duration = Duration::from_secs(30);

/// Runs the line test a `start_line_test` with `token` asks for. Refuses, and the
/// session goes on, if the token does not admit its site now or the site's test is
/// already running; otherwise runs on `socket` until the result is sent or the site
/// goes away, and the session ends after it.
pub(crate) async fn run(
    socket: &mut WebSocket,
    state: &AppState,
    token: &str,
) -> Result<(), ProtocolError> {
    let admission = crate::admission::admit(state, token).await?;
    let Some(claim) = state.line_tests.claim(&admission.site_code) else {
        return Err(ProtocolError::new(
            ErrorCode::LineTestBusy,
            "this site's line test is already running",
        ));
    };
    let mut test = Test {
        socket,
        state,
        peer: None,
        media: None,
    };
    if let Err(error) = test.run(&admission).await {
        test.send(&error.to_message()).await;
    }
    if let Some(peer) = test.peer {
        state.sfu.command(Command::RemovePeer { peer });
    }
    drop(claim);
    Ok(())
}

struct Test<'a> {
    socket: &'a mut WebSocket,
    state: &'a AppState,
    /// The SFU holds this peer once the site has offered.
    peer: Option<PeerId>,
    media: Option<UnboundedReceiver<PeerEvent>>,
}

/// How one step of the test went.
enum Step {
    Continue,
    /// The result went out, or the site left.
    Finished,
}

impl Test<'_> {
    async fn run(&mut self, admission: &Admission) -> Result<(), ProtocolError> {
        let config = &self.state.config.line_test;
        let plan = plan(config);
        self.send(&ServerMessage::LineTestStarted {
            meeting: MeetingRef {
                id: admission.meeting_id.clone(),
                title: admission.title.clone(),
            },
            site: SiteRef {
                code: admission.site_code.clone(),
                name: admission.site_name.clone(),
            },
            plan: LineTestPlanView {
                probe_ms: millis(plan.probe_phase),
                download_ms: millis(plan.download),
                upload_ms: millis(plan.upload),
                download_kbps: config.download_kbps,
                upload_kbps: config.upload_kbps,
            },
        })
        .await;
        tracing::info!(site = %admission.site_code, meeting = %admission.meeting_id, "line test started");

        let total = plan.probe_phase + plan.download + plan.upload;
        let give_up = Instant::now() + total + REPORT_MARGIN;
        let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            let step = tokio::select! {
                frame = self.socket.recv() => {
                    idle_deadline = Instant::now() + IDLE_TIMEOUT;
                    match frame {
                        Some(Ok(frame)) => self.handle_frame(frame, &plan).await?,
                        Some(Err(_)) | None => Step::Finished,
                    }
                }
                event = next_event(&mut self.media) => match event {
                    Some(event) => self.handle_event(event, admission).await?,
                    None => {
                        self.media = None;
                        Step::Continue
                    }
                },
                _ = pings.tick() => {
                    match self.socket.send(Message::Ping(Default::default())).await {
                        Ok(()) => Step::Continue,
                        Err(_) => Step::Finished,
                    }
                }
                _ = sleep_until(idle_deadline) => Step::Finished,
                _ = sleep_until(give_up) => {
                    tracing::error!(site = %admission.site_code, "the line test never reported");
                    return Err(ProtocolError::new(ErrorCode::Internal, "the line test did not finish"));
                }
            };
            if let Step::Finished = step {
                return Ok(());
            }
        }
    }

    async fn handle_frame(
        &mut self,
        frame: Message,
        plan: &LineTestPlan,
    ) -> Result<Step, ProtocolError> {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return Ok(Step::Finished),
            Message::Ping(_) | Message::Pong(_) => return Ok(Step::Continue),
            Message::Binary(_) => {
                self.refuse(ProtocolError::new(
                    ErrorCode::BinaryNotSupported,
                    "messages are JSON text frames",
                ))
                .await;
                return Ok(Step::Continue);
            }
        };
        let limit = self.state.config.limits.max_message_bytes;
        if text.len() > limit {
            return Err(ProtocolError::new(
                ErrorCode::MessageTooLarge,
                format!("a message may have at most {limit} bytes"),
            ));
        }
        let message = match parse_client_message(text.as_str()) {
            Ok(message) => message,
            Err(error) => {
                self.refuse(error).await;
                return Ok(Step::Continue);
            }
        };
        let refusal = match message {
            ClientMessage::Offer { sdp, .. } if self.peer.is_none() => {
                let peer = self.state.next_peer_id();
                // Parsed on this connection's task, not on the media thread.
                let offer = OfferSdp::parse(&sdp);
                self.media = Some(self.state.sfu.add_line_test(peer, offer, plan.clone()));
                self.peer = Some(peer);
                return Ok(Step::Continue);
            }
            ClientMessage::Offer { .. } => {
                ProtocolError::new(ErrorCode::NegotiationRefused, "a line test takes one offer")
            }
            ClientMessage::Candidate { candidate, .. } => match self.peer {
                Some(peer) => {
                    self.state
                        .sfu
                        .command(Command::RemoteCandidate { peer, candidate });
                    return Ok(Step::Continue);
                }
                None => ProtocolError::new(
                    ErrorCode::NegotiationRefused,
                    "send your offer before your candidates",
                ),
            },
            ClientMessage::Leave {} => {
                self.send(&ServerMessage::Left {}).await;
                return Ok(Step::Finished);
            }
            ClientMessage::Join { .. } | ClientMessage::StartLineTest { .. } => ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this session runs a line test; open another for anything else",
            ),
            _ => ProtocolError::new(
                ErrorCode::Forbidden,
                "a line test takes only offer, candidate and leave",
            ),
        };
        self.refuse(refusal).await;
        Ok(Step::Continue)
    }

    async fn handle_event(
        &mut self,
        event: PeerEvent,
        admission: &Admission,
    ) -> Result<Step, ProtocolError> {
        match event {
            PeerEvent::Answer { sdp } => {
                self.send(&ServerMessage::Answer { sdp }).await;
                Ok(Step::Continue)
            }
            PeerEvent::LineTestDone(report) => {
                let figures = Figures::from_report(&report);
                self.conclude(admission, figures).await;
                Ok(Step::Finished)
            }
            PeerEvent::Gone { reason } => {
                // The SFU forgot the peer itself.
                self.peer = None;
                tracing::info!(site = %admission.site_code, ?reason, "line test connection failed");
                self.conclude(admission, Figures::default()).await;
                Ok(Step::Finished)
            }
            PeerEvent::Rejected { error } => {
                let refusal = match &error {
                    SfuError::BadOffer(_) => {
                        // No peer was made: the site may offer again.
                        self.peer = None;
                        self.media = None;
                        ProtocolError::new(ErrorCode::BadSdp, error.to_string())
                    }
                    SfuError::BadCandidate(_) => {
                        ProtocolError::new(ErrorCode::BadCandidate, error.to_string())
                    }
                    _ => ProtocolError::new(ErrorCode::Internal, error.to_string()),
                };
                self.refuse(refusal).await;
                Ok(Step::Continue)
            }
            // A line-test peer publishes nothing and is never offered to; its line
            // figures are the test's own.
            _ => Ok(Step::Continue),
        }
    }

    /// Judges the figures, stores the result, passes it on and tells the site.
    async fn conclude(&mut self, admission: &Admission, figures: Figures) {
        let config = &self.state.config.line_test;
        let (verdict, reasons) = judge(&figures, config);
        let Ok(site) = SiteCode::parse(&admission.site_code) else {
            return;
        };
        let record = LineTestRecord {
            site,
            meeting: MeetingId::parse(&admission.meeting_id),
            at: now_millis(),
            verdict,
            reasons,
            figures,
            download_needed_kbps: config.download_kbps,
            upload_needed_kbps: config.upload_kbps,
        };
        tracing::info!(
            site = %admission.site_code,
            verdict = verdict.as_str(),
            figures = ?record.figures,
            "line test done"
        );
        // On record before the site hears it: what a site was told, IT staff can read.
        if let Err(error) = self.state.store.save_line_test(&record).await {
            tracing::error!(site = %admission.site_code, %error, "cannot store a line test");
        }
        self.state.meetings.line_test_done(&record);
        self.state.monitor.record_line_test(&record);
        self.send(&ServerMessage::LineTestResult(result_message(&record)))
            .await;
    }

    async fn refuse(&mut self, error: ProtocolError) {
        tracing::debug!(code = ?error.code, "line test refused: {}", error.message);
        self.send(&error.to_message()).await;
    }

    async fn send(&mut self, message: &ServerMessage) {
        let text = match serde_json::to_string(message) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!("cannot serialize {message:?}: {e}");
                return;
            }
        };
        // A failed send means the site is gone; the next receive ends the test.
        let _ = self.socket.send(Message::Text(Utf8Bytes::from(text))).await;
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

async fn next_event(media: &mut Option<UnboundedReceiver<PeerEvent>>) -> Option<PeerEvent> {
    match media {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Figures {
        Figures {
            connected: true,
            completed: true,
            rtt_ms: Some(12.0),
            jitter_ms: Some(1.0),
            loss_percent: Some(0.0),
            download_kbps: 539.0,
            upload_kbps: 560.0,
            audio: true,
            video: true,
            duration_ms: 12_000,
        }
    }

    /// The verdict and the reasons' codes and severities, worst first.
    fn check(figures: Figures, verdict: Verdict, reasons: &[(&str, Verdict)]) {
        let config = cau_config::Config::defaults().line_test;
        let (actual, actual_reasons) = judge(&figures, &config);
        let codes: Vec<(&str, Verdict)> = actual_reasons
            .iter()
            .map(|r| (r.code.as_str(), r.severity))
            .collect();
        assert_eq!(
            (actual, codes.as_slice()),
            (verdict, reasons),
            "{figures:?}"
        );
    }

    #[test]
    fn verdicts_follow_the_configured_thresholds() {
        use Verdict::*;
        check(clean(), Ready, &[]);
        // 90% of the 540 kbit/s a meeting needs is ready; from 250 it is marginal.
        check(
            Figures {
                download_kbps: 486.0,
                ..clean()
            },
            Ready,
            &[],
        );
        check(
            Figures {
                upload_kbps: 400.0,
                ..clean()
            },
            Marginal,
            &[("upload_low", Marginal)],
        );
        check(
            Figures {
                upload_kbps: 190.0,
                download_kbps: 180.0,
                rtt_ms: Some(900.0),
                ..clean()
            },
            NotReady,
            &[
                ("download_low", NotReady),
                ("upload_low", NotReady),
                ("rtt_high", NotReady),
            ],
        );
        check(
            Figures {
                rtt_ms: Some(250.0),
                ..clean()
            },
            Marginal,
            &[("rtt_high", Marginal)],
        );
        check(
            Figures {
                rtt_ms: None,
                ..clean()
            },
            NotReady,
            &[("no_reply", NotReady)],
        );
        check(
            Figures {
                loss_percent: Some(3.0),
                ..clean()
            },
            Marginal,
            &[("loss_high", Marginal)],
        );
        check(
            Figures {
                loss_percent: Some(8.0),
                ..clean()
            },
            NotReady,
            &[("loss_high", NotReady)],
        );
        check(
            Figures {
                jitter_ms: Some(45.0),
                ..clean()
            },
            Marginal,
            &[("jitter_high", Marginal)],
        );
        check(
            Figures {
                audio: false,
                ..clean()
            },
            NotReady,
            &[("no_audio", NotReady)],
        );
        check(
            Figures {
                video: false,
                ..clean()
            },
            Marginal,
            &[("no_video", Marginal)],
        );
        check(
            Figures {
                video: false,
                loss_percent: Some(9.0),
                ..clean()
            },
            NotReady,
            &[("loss_high", NotReady), ("no_video", Marginal)],
        );
        check(Figures::default(), NotReady, &[("no_connection", NotReady)]);
        check(
            Figures {
                completed: false,
                ..clean()
            },
            NotReady,
            &[("incomplete", NotReady)],
        );
    }

    #[test]
    fn reasons_read_as_plain_words() {
        let reason = Reason {
            code: ReasonCode::UploadLow,
            severity: Verdict::NotReady,
            measured: Some(190.4),
            limit: Some(540.0),
        };
        assert_eq!(
            reason.message(),
            "upload 190 kbit/s, a meeting needs 540 kbit/s"
        );
        for (code, name) in REASON_CODES {
            assert_eq!(ReasonCode::parse(name), Some(*code));
            assert_eq!(code.as_str(), *name);
        }
        for verdict in [Verdict::Ready, Verdict::Marginal, Verdict::NotReady] {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
    }
}
