//! Running a [`Scenario`] on a Cầu server: scheduling it through the REST API as the
//! secretary does, joining every site with its join link over the real signaling protocol,
//! and the chair's floor and layout.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use cau_tests::api::{link_for, now_millis, request, token_in};
use cau_tests::client::{ClientConfig, TestClient, VideoSizer};
use serde_json::json;

use crate::media::{MediaPlan, Receiver};
use crate::scenario::{DirectoryEntry, Role, Scenario, Site, parse_directory};

/// The server's site directory.
pub async fn directory(addr: SocketAddr) -> anyhow::Result<Vec<DirectoryEntry>> {
    let (status, sites) = request(addr, "GET", "/api/sites", None).await?;
    if status != 200 {
        bail!("GET /api/sites answered {status}: {sites}");
    }
    parse_directory(&sites)
}

/// Schedules `scenario` as a chair-mode meeting running now, and returns each site's join
/// token, in the order of [`Scenario::sites`]. Observers get observer links.
pub async fn schedule(addr: SocketAddr, scenario: &Scenario) -> anyhow::Result<Vec<String>> {
    let chair = scenario.chair().context("a scenario without a chair")?;
    let invited: Vec<&str> = scenario
        .sites
        .iter()
        .filter(|s| s.role == Role::Participant)
        .map(|s| s.code.as_str())
        .collect();
    let now = now_millis();
    let body = json!({
        "title": format!("Đo tải: {}", scenario.name),
        "start": cau_signaling::model::format_time(now - 60_000),
        "end": cau_signaling::model::format_time(now + 3_600_000),
        "chair": scenario.sites[chair].code,
        "sites": invited,
        "floor_mode": "chair",
    });
    let (status, meeting) = request(addr, "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("scheduling answered {status}: {meeting}");
    }
    let id = meeting["id"].as_str().context("a meeting without id")?;
    let mut tokens = Vec::new();
    for site in &scenario.sites {
        let link = match site.role {
            Role::Observer => {
                let (status, link) = request(
                    addr,
                    "POST",
                    &format!("/api/meetings/{id}/links"),
                    Some(&json!({"site": site.code, "role": "observer"})),
                )
                .await?;
                if status != 201 && status != 200 {
                    bail!(
                        "an observer link for {} answered {status}: {link}",
                        site.code
                    );
                }
                link["url"]
                    .as_str()
                    .context("a link without url")?
                    .to_owned()
            }
            Role::Chair | Role::Participant => link_for(&meeting, &site.code)?,
        };
        tokens.push(token_in(&link)?);
    }
    Ok(tokens)
}

/// How a site's client sends and shows video.
#[derive(Debug, Clone)]
pub struct VideoSetup {
    /// Whether it publishes its video in three simulcast layers.
    pub simulcast: bool,
    /// The sizes it reports for the videos it receives.
    pub sizes: VideoSizer,
}

impl VideoSetup {
    /// Site `index` of `scenario` publishing `plan`'s layers.
    pub fn of(scenario: &Scenario, index: usize, plan: &MediaPlan) -> VideoSetup {
        VideoSetup {
            simulcast: plan.video.len() > 1,
            sizes: scenario.video_sizer(index),
        }
    }
}

/// Joins one site with its token; what it receives goes to `receiver`.
pub async fn join(
    ws_url: &str,
    token: &str,
    site: &Site,
    receiver: &Arc<Receiver>,
    video: VideoSetup,
) -> anyhow::Result<TestClient> {
    let mut config = ClientConfig::with_token(ws_url, token);
    config.publish_audio = site.audio;
    config.publish_video = site.video;
    config.packet_sink = Some(receiver.sink());
    config.simulcast = video.simulcast;
    config.video_sizes = Some(video.sizes);
    TestClient::join(config).await
}

/// The chair's moves once everyone is in: the floor to the scenario's floor holder, and
/// the layout.
pub async fn chair_arranges(chair: &TestClient, scenario: &Scenario) -> anyhow::Result<()> {
    if let Some(floor) = scenario.floor {
        let site = &scenario.sites[floor].code;
        chair
            .send_raw(&json!({"type": "grant_floor", "site": site}).to_string())
            .await?;
    }
    let layout: Vec<&str> = scenario
        .layout
        .iter()
        .map(|&i| scenario.sites[i].code.as_str())
        .collect();
    chair
        .send_raw(&json!({"type": "set_layout", "sites": layout}).to_string())
        .await?;
    Ok(())
}
