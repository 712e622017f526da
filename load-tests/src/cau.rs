//! Running a [`Scenario`] on a Cầu server: scheduling it through the REST API as the
//! secretary does, joining every site with its join link over the real signaling protocol,
//! and the chair's floor and layout.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use cau_tests::api::{link_for, now_millis, request, token_in};
use cau_tests::client::{ClientConfig, LayerSend, TestClient, VideoSizer};
use serde_json::json;

use crate::light::{LightClient, LightConfig};
use crate::media::{MediaOutput, MediaPlan, Receiver};
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

/// Which client stack simulates the sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// `TestClient`, on webrtc-rs: a second implementation beside the server's str0m.
    #[default]
    WebrtcRs,
    /// `LightClient`, on str0m's sans-IO core: far less CPU per site.
    Light,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::WebrtcRs => "webrtc-rs",
            ClientKind::Light => "light",
        }
    }
}

/// A joined site, on either client stack.
pub enum SiteClient {
    WebrtcRs(TestClient),
    Light(LightClient),
}

impl SiteClient {
    /// Sends a text frame as it is (the chair's moves).
    pub async fn send_raw(&self, text: &str) -> anyhow::Result<()> {
        match self {
            SiteClient::WebrtcRs(client) => client.send_raw(text).await,
            SiteClient::Light(client) => client.send_raw(text),
        }
    }

    /// `publish_layers` messages received since joining.
    pub fn publish_layers_messages(&self) -> usize {
        match self {
            SiteClient::WebrtcRs(client) => client.messages_of_type("publish_layers").len(),
            SiteClient::Light(client) => client.publish_layers_messages(),
        }
    }

    /// What went wrong in the client's background so far (an offer it could not
    /// answer, an error from the server, a broken socket); a healthy client has none.
    pub fn failures(&self) -> usize {
        match self {
            SiteClient::WebrtcRs(client) => client.failures().len(),
            SiteClient::Light(client) => client.failures(),
        }
    }

    /// Closes everything without `leave`.
    pub async fn drop_abruptly(self) {
        match self {
            SiteClient::WebrtcRs(client) => client.drop_abruptly().await,
            SiteClient::Light(client) => client.stop(),
        }
    }
}

impl MediaOutput for SiteClient {
    async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        match self {
            SiteClient::WebrtcRs(client) => client.send_audio(payload).await,
            SiteClient::Light(client) => client.send_audio(payload).await,
        }
    }

    async fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        match self {
            SiteClient::WebrtcRs(client) => {
                MediaOutput::send_video(client, layer, payload, marker).await
            }
            SiteClient::Light(client) => client.send_video(layer, payload, marker).await,
        }
    }

    fn layer_active(&self, layer: u8) -> bool {
        match self {
            SiteClient::WebrtcRs(client) => MediaOutput::layer_active(client, layer),
            SiteClient::Light(client) => client.layer_active(layer),
        }
    }
}

/// Joins one site with its token on `kind`'s stack; what it receives goes to `receiver`.
pub async fn join(
    ws_url: &str,
    token: &str,
    site: &Site,
    receiver: &Arc<Receiver>,
    video: VideoSetup,
    kind: ClientKind,
) -> anyhow::Result<SiteClient> {
    if kind == ClientKind::Light {
        let client = LightClient::join(LightConfig {
            ws_url: ws_url.to_owned(),
            token: token.to_owned(),
            publish_audio: site.audio,
            publish_video: site.video,
            simulcast: video.simulcast,
            video_sizes: Some(video.sizes),
            receiver: receiver.clone(),
        })
        .await?;
        return Ok(SiteClient::Light(client));
    }
    let mut config = ClientConfig::with_token(ws_url, token);
    config.publish_audio = site.audio;
    config.publish_video = site.video;
    config.packet_sink = Some(receiver.sink());
    config.simulcast = video.simulcast;
    config.video_sizes = Some(video.sizes);
    Ok(SiteClient::WebrtcRs(TestClient::join(config).await?))
}

/// The chair's moves once everyone is in: the floor to the scenario's floor holder, and
/// the layout.
pub async fn chair_arranges(chair: &SiteClient, scenario: &Scenario) -> anyhow::Result<()> {
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
