//! Three sites in one meeting, each on a line of its own in a network namespace made by
//! this test: the chair on a clean line, a commune whose uplink loses 5% of its packets
//! at random and holds the rest for 100 ms (as netem's `loss 5% delay 100ms` on the
//! site's side of the line; this kernel has no netem, see `tests/src/shaping.rs` for
//! how), and a commune whose line is cut mid-meeting. The monitor
//! scores the clean site `excellent`, the lossy one `poor` within 10 s and the cut one
//! `lost` within 5 s, and a webhook receives the alert; the history API has each site's
//! series with the loss in it; `/metrics` parses as Prometheus text with per-site
//! gauges; and the IT staff's dashboard in Chromium shows the three in their colours
//! and opens a site's charts.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_signaling::model::format_time;
use cau_tests::api::{ADMIN_TOKEN, link_for, now_millis, request, request_as, token_in};
use cau_tests::browser::run_script;
use cau_tests::client::{ClientConfig, TestClient};
use cau_tests::server::start_test_server_with;
use cau_tests::shaping::{Direction, Shaper, run_in_private_network};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CLEAN: (&str, Ipv4Addr) = ("cao-bang", Ipv4Addr::new(127, 0, 0, 2));
const LOSSY: (&str, Ipv4Addr) = ("ha-quang", Ipv4Addr::new(127, 0, 0, 3));
const CUT: (&str, Ipv4Addr) = ("tra-linh", Ipv4Addr::new(127, 0, 0, 4));

#[test]
fn line_quality_is_scored_per_site() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    let mut shaper = Shaper::new();
    shaper.lose(LOSSY.1, Direction::Uplink, 0.05)?;
    shaper.delay(LOSSY.1, Direction::Uplink, Duration::from_millis(100))?;

    let (webhook_url, mut alerts) = webhook_receiver().await?;
    let config = format!(
        "[admin]\ntoken = \"{ADMIN_TOKEN}\"\n\
         [monitoring]\nalert_after_s = 5\nwebhook_url = \"{webhook_url}\"\n\
         [meetings]\njoin_before_start_minutes = 60\n"
    );
    let server = start_test_server_with(&config).await?;
    let addr = server.http_addr();
    let started = now_millis();

    // An open-floor meeting: everyone may speak.
    let body = json!({
        "title": "Giao ban trực tuyến",
        "start": format_time(started - 60_000),
        "end": format_time(started + 3_600_000),
        "chair": CLEAN.0,
        "sites": [LOSSY.0, CUT.0],
        "floor_mode": "open",
    });
    let (status, meeting) = request(addr, "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("scheduling answered {status}: {meeting}");
    }

    let ws = server.ws_url();
    let mut sites = Vec::new();
    for (code, ip) in [CLEAN, LOSSY, CUT] {
        let mut client_config =
            ClientConfig::with_token(ws.clone(), token_in(&link_for(&meeting, code)?)?);
        client_config.local_ip = ip;
        let client = TestClient::join(client_config)
            .await
            .with_context(|| format!("{code} could not join"))?;
        if code == CLEAN.0 {
            // The chair opens the meeting, so the communes need not wait in the lobby.
            client.send_raw(r#"{"type":"open_meeting"}"#).await?;
        }
        sites.push(std::sync::Arc::new(client));
    }
    let joined_at = Instant::now();
    // Each site sends what a browser with camera and microphone would: audio every
    // 20 ms and about 220 kbit/s of video.
    let pumps: Vec<_> = sites.iter().map(|site| pump(site.clone())).collect();

    // Within 10 s the clean site reads excellent and the lossy one poor.
    let levels = wait_for_levels(
        addr,
        &[
            (CLEAN.0, "excellent"),
            (LOSSY.0, "poor"),
            (CUT.0, "excellent"),
        ],
        Duration::from_secs(10),
    )
    .await?;
    println!(
        "levels after {:.1} s: {levels}",
        joined_at.elapsed().as_secs_f64()
    );

    // The cut: the third site's line drops everything, both ways.
    shaper.cut(CUT.1)?;
    let cut_at = Instant::now();
    wait_for_levels(addr, &[(CUT.0, "lost")], Duration::from_secs(5))
        .await
        .context("the cut site did not read lost within 5 s")?;
    println!(
        "cut site lost after {:.1} s",
        cut_at.elapsed().as_secs_f64()
    );
    // Alerts reach the webhook: the cut site's drop, and the lossy site staying poor
    // past alert_after_s. The receiver refuses its first request (503), so both
    // arriving means the refused one was tried again.
    let mut cut_alert = None;
    let mut lossy_alert = None;
    let collected = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(alert) = alerts.recv().await {
            if alert["alert"]["site"] == CUT.0 && cut_alert.is_none() {
                println!(
                    "webhook: cut site's alert {:.1} s after the cut: {alert}",
                    cut_at.elapsed().as_secs_f64()
                );
                cut_alert = Some(alert);
            } else if alert["alert"]["site"] == LOSSY.0 && lossy_alert.is_none() {
                lossy_alert = Some(alert);
            }
            if cut_alert.is_some() && lossy_alert.is_some() {
                return;
            }
        }
    })
    .await;
    if collected.is_err() {
        bail!("webhook alerts within 20 s: cut {cut_alert:?}, lossy {lossy_alert:?}");
    }
    let (cut_alert, lossy_alert) = (
        cut_alert.unwrap_or_default(),
        lossy_alert.unwrap_or_default(),
    );
    if cut_alert["alert"]["kind"] != "dropped" && cut_alert["alert"]["kind"] != "degraded" {
        bail!("unexpected alert about the cut site: {cut_alert}");
    }
    if lossy_alert["alert"]["kind"] != "degraded" {
        bail!("unexpected alert about the lossy site: {lossy_alert}");
    }

    // The clean and lossy lines go on: five-second samples for the history.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let levels = wait_for_levels(
        addr,
        &[(CLEAN.0, "excellent"), (LOSSY.0, "poor"), (CUT.0, "lost")],
        Duration::from_secs(1),
    )
    .await?;
    println!("levels at the end: {levels}");

    // History: every site has its series, with the loss where it was.
    let from = format_time(started - 1000);
    for (code, _) in [CLEAN, LOSSY, CUT] {
        let path = format!("/api/sites/{code}/link?from={from}");
        let (status, history) = request(addr, "GET", &path, None).await?;
        if status != 200 {
            bail!("history of {code} answered {status}: {history}");
        }
        let samples = history["samples"].as_array().context("no samples")?;
        // The cut site's series ends with its line, some 8 s after it joined.
        let least = if code == CUT.0 { 1 } else { 3 };
        if samples.len() < least {
            bail!("{code} has {} history samples: {history}", samples.len());
        }
        let mean_loss = samples
            .iter()
            .filter_map(|s| s["loss_in"].as_f64())
            .sum::<f64>()
            / samples.len() as f64;
        let mut rtts: Vec<f64> = samples
            .iter()
            .filter_map(|s| s["rtt_ms"].as_f64())
            .collect();
        rtts.sort_by(f64::total_cmp);
        let median_rtt = rtts.get(rtts.len() / 2).copied();
        println!(
            "{code}: {} samples, mean uplink loss {mean_loss:.3}, median RTT {median_rtt:?} ms",
            samples.len()
        );
        // The lossy line's 100 ms is in its round trip; loopback's is a millisecond or two.
        match code {
            c if c == LOSSY.0 && !median_rtt.is_some_and(|rtt| (100.0..200.0).contains(&rtt)) => {
                bail!("the delayed site's history shows an RTT of {median_rtt:?} ms: {history}")
            }
            c if c == CLEAN.0 && !median_rtt.is_some_and(|rtt| rtt < 50.0) => {
                bail!("the clean site's history shows an RTT of {median_rtt:?} ms: {history}")
            }
            _ => {}
        }
        match code {
            c if c == LOSSY.0 && !(0.02..0.12).contains(&mean_loss) => {
                bail!("the lossy site's history shows {mean_loss} loss: {history}")
            }
            c if c == CLEAN.0 && mean_loss > 0.005 => {
                bail!("the clean site's history shows {mean_loss} loss: {history}")
            }
            _ => {}
        }
    }
    let path = format!("/api/sites/{}/link/events?from={from}", CUT.0);
    let (_, events) = request(addr, "GET", &path, None).await?;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .context("no events")?
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    if !kinds.contains(&"joined") || !kinds.contains(&"dropped") {
        bail!("the cut site's events miss its join or its drop: {events}");
    }

    // /metrics parses as Prometheus text and has the per-site gauges.
    let (status, text) = request_as(addr, "GET", "/metrics", Some(ADMIN_TOKEN), None).await?;
    if status != 200 {
        bail!("/metrics answered {status}: {text}");
    }
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .context("/metrics does not parse as Prometheus text")?;
    for (code, _) in [CLEAN, LOSSY, CUT] {
        for name in [
            "cau_site_score",
            "cau_site_rtt_seconds",
            "cau_site_loss_ratio",
        ] {
            let found = scrape
                .samples
                .iter()
                .any(|s| s.metric == name && s.labels.get("site") == Some(code));
            if !found {
                bail!("/metrics has no {name} for {code}:\n{text}");
            }
        }
    }
    let lossy_score = scrape
        .samples
        .iter()
        .find(|s| s.metric == "cau_site_score" && s.labels.get("site") == Some(LOSSY.0))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        });
    if !lossy_score.is_some_and(|v| v > 0.0 && v < 65.0) {
        bail!("the lossy site's score gauge reads {lossy_score:?}");
    }

    // What a browser says of its own line reaches the dashboard; nonsense is refused.
    let chair = &sites[0];
    chair
        .send_raw(r#"{"type":"client_stats","stats":{"frames_decoded":1200,"freeze_count":2,"jitter_buffer_ms":41.5,"ice_state":"connected"}}"#)
        .await?;
    chair
        .send_raw(r#"{"type":"client_stats","stats":{"frames_decoded":-5}}"#)
        .await?;
    chair
        .wait_until(
            "the refusal of negative figures",
            Duration::from_secs(5),
            |c| {
                c.messages_of_type("error").iter().any(|e| {
                    e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("client_stats"))
                })
            },
        )
        .await?;
    let (_, now) = request(addr, "GET", "/api/monitor/sites", None).await?;
    let client = now["sites"]
        .as_array()
        .and_then(|sites| sites.iter().find(|s| s["code"] == CLEAN.0))
        .map(|s| s["client"].clone())
        .unwrap_or_default();
    if client["frames_decoded"] != 1200.0 || client["freeze_count"] != 2.0 {
        bail!("the chair's browser figures are not on its line: {client}");
    }

    // The dashboard in Chromium: three sites in their colours, and a site's charts.
    let expected = json!({ CLEAN.0: "excellent", LOSSY.0: "poor", CUT.0: "lost" });
    let report = run_script(
        "monitor-dashboard.mjs",
        &[&server.base_url(), ADMIN_TOKEN, &expected.to_string()],
    )
    .await?;
    println!("dashboard: {report}");

    for pump in pumps {
        pump.abort();
    }
    Ok(())
}

/// Keeps a site sending audio every 20 ms and a 1,100-byte video frame every 40 ms.
fn pump(site: std::sync::Arc<TestClient>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let audio = vec![0x55u8; 100];
        let video = vec![0x10u8; 1100];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0u64.. {
            tick.tick().await;
            // A cut line makes sends fail or vanish: keep going regardless.
            let _ = site.send_audio(&audio).await;
            if n % 2 == 0 {
                let _ = site.send_video(&video, true).await;
            }
        }
    })
}

/// Polls `/api/monitor/sites` until every listed site reads its level.
async fn wait_for_levels(
    addr: SocketAddr,
    expected: &[(&str, &str)],
    within: Duration,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = request(addr, "GET", "/api/monitor/sites", None).await?;
        if status != 200 {
            bail!("/api/monitor/sites answered {status}: {body}");
        }
        let level_of = |code: &str| {
            body["sites"]
                .as_array()
                .and_then(|sites| sites.iter().find(|s| s["code"] == code))
                .map(|s| (s["level"].clone(), s["score"].clone()))
        };
        let now: Value = expected
            .iter()
            .map(|(code, _)| {
                let (level, score) = level_of(code).unwrap_or_default();
                (
                    (*code).to_owned(),
                    json!({ "level": level, "score": score }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        if expected
            .iter()
            .all(|(code, level)| now[*code]["level"] == *level)
        {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("levels after {within:?}: {now}, expected {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A one-route HTTP server standing in for the operators' alerting system: every
/// POSTed JSON body it accepts comes out of the channel. It refuses the very first
/// request with 503, so an alert arrives only if the server tries again.
async fn webhook_receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<Value>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (bodies, received) = mpsc::unbounded_channel();
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bodies = bodies.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buffer = [0u8; 4096];
                // Bounded: a request larger than 64 KiB is not an alert.
                while data.len() < 65_536 {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&data);
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        let first = requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                        let answer: &[u8] = if first {
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        } else {
                            if let Ok(value) = serde_json::from_str(&body[..length]) {
                                let _ = bodies.send(value);
                            }
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        };
                        let _ = stream.write_all(answer).await;
                        return;
                    }
                }
            });
        }
    });
    Ok((url, received))
}
