//! A webrtc-rs client publishing its video in three simulcast layers through the real server: a subscriber showing it as a thumbnail receives the lowest layer, one showing it large the top layer, the middle layer no one wants is paused at the publisher (`publish_layers`) and the client stops sending it, and it resumes when a subscriber's view grows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{
    ClientConfig, LayerCount, MediaKind, SIMULCAST_RIDS, TestClient, VideoSizer,
    parse_tagged_payload,
};
use cau_tests::server::start_test_server;
use serde_json::{Value, json};

/// One frame per layer every this long: 25 frames a second, as a camera sends.
const FRAME_INTERVAL: Duration = Duration::from_millis(40);

/// How long media may take to start and the server to switch layers. Loopback takes
/// milliseconds; the margin is for a loaded two-core machine.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The server pauses a layer no one has wanted for 4 s; the margin is for the machine.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(12);

/// The heights at which the two subscribers show the publisher's video: a thumbnail
/// (the lowest layer is 180 tall) and the main view (the top layer, 720).
const THUMBNAIL: u32 = 180;
const LARGE: u32 = 720;

#[tokio::test(flavor = "multi_thread")]
async fn simulcast_publisher_sends_only_the_layers_someone_watches() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let mut config = ClientConfig::new(server.ws_url(), "hue", "publisher");
    config.publish_audio = false;
    config.simulcast = true;
    let publisher = Arc::new(
        TestClient::join(config)
            .await
            .context("publisher joining")?,
    );

    // The publisher sends every layer's frames, each tagged with its layer's RID, from
    // now to the end: what a paused layer would have carried is held back by the client.
    let sender = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for index in 0.. {
                for (layer, rid) in SIMULCAST_RIDS.iter().enumerate() {
                    publisher.send_tagged_on_layer(rid, layer, index).await?;
                }
                tokio::time::sleep(FRAME_INTERVAL).await;
            }
            anyhow::Ok(())
        })
    };

    let subscriber = |name: &str, height: u32| {
        let mut config = ClientConfig::new(server.ws_url(), "hue", name);
        config.publish_video = false;
        config.video_sizes = Some(VideoSizer(Arc::new(move |_, _| height)));
        TestClient::join(config)
    };
    let thumbnail = subscriber("thumbnail", THUMBNAIL).await?;
    let large = subscriber("large", LARGE).await?;

    // Each receives the layer its view needs, and then only that one.
    for (client, rid) in [(&thumbnail, "l"), (&large, "h")] {
        client
            .wait_until(&format!("layer {rid} only"), TIMEOUT, |client| {
                latest_layers(client, publisher.participant_id(), 10) == [rid]
            })
            .await?;
    }

    // No one wants the middle layer: the server pauses it at the publisher, which stops
    // sending it while it goes on sending the other two.
    publisher
        .wait_until("`publish_layers` pausing m", PAUSE_TIMEOUT, |client| {
            latest_publish_layers(client) == Some(vec![true, false, true])
        })
        .await?;
    let before = publisher.video_layer_counts();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = publisher.video_layer_counts();
    let sent = |counts: &[LayerCount], layer: usize| counts[layer].packets_sent;
    let paused = |counts: &[LayerCount], layer: usize| counts[layer].packets_paused;
    if !publisher.video_layer_active(1)
        && sent(&after, 1) == sent(&before, 1)
        && paused(&after, 1) > paused(&before, 1)
        && sent(&after, 0) > sent(&before, 0)
        && sent(&after, 2) > sent(&before, 2)
    {
        println!("paused m: before {before:?}, a second later {after:?}");
    } else {
        bail!("the middle layer was not paused alone: before {before:?}, a second later {after:?}");
    }
    check_no_failures(&[&publisher, &thumbnail, &large])?;

    // The thumbnail grows to 360 pixels: the server wants the middle layer again, the
    // publisher resumes it, and the subscriber receives it.
    let video_mid = thumbnail
        .remote_tracks()
        .into_iter()
        .find(|track| track.kind == MediaKind::Video)
        .context("the thumbnail subscriber has no video line")?
        .mid;
    let sizes = json!({"type": "video_sizes", "sizes": [{"mid": video_mid, "height": 360}]});
    thumbnail.send_raw(&sizes.to_string()).await?;
    publisher
        .wait_until("`publish_layers` resuming m", TIMEOUT, |client| {
            latest_publish_layers(client) == Some(vec![true, true, true])
        })
        .await?;
    thumbnail
        .wait_until("layer m only", TIMEOUT, |client| {
            latest_layers(client, publisher.participant_id(), 10) == ["m"]
        })
        .await?;
    println!("resumed m: {:?}", publisher.video_layer_counts());

    sender.abort();
    check_no_failures(&[&publisher, &thumbnail, &large])?;
    thumbnail.leave().await?;
    large.leave().await?;
    let publisher = Arc::into_inner(publisher).context("the sender task still holds the client")?;
    publisher.leave().await
}

/// The distinct layers (by tag) of the last `count` video packets from `from`, or fewer
/// if fewer arrived.
fn latest_layers(client: &TestClient, from: &str, count: usize) -> Vec<String> {
    let packets = client.received();
    let tags: Vec<String> = packets
        .iter()
        .rev()
        .filter(|packet| packet.from == from && packet.kind == MediaKind::Video)
        .filter_map(|packet| parse_tagged_payload(MediaKind::Video, &packet.payload))
        .map(|tagged| tagged.tag)
        .take(count)
        .collect();
    if tags.len() < count {
        return Vec::new();
    }
    let mut layers = tags;
    layers.sort();
    layers.dedup();
    layers
}

/// Whether each layer is active, lowest first, by the latest `publish_layers`.
fn latest_publish_layers(client: &TestClient) -> Option<Vec<bool>> {
    let message = client.messages_of_type("publish_layers").pop()?;
    let layers = message.get("layers")?.as_array()?;
    SIMULCAST_RIDS
        .iter()
        .map(|rid| {
            layers
                .iter()
                .find(|layer| layer.get("rid").and_then(Value::as_str) == Some(rid))?
                .get("active")?
                .as_bool()
        })
        .collect()
}

fn check_no_failures(clients: &[&TestClient]) -> anyhow::Result<()> {
    for client in clients {
        let failures = client.failures();
        if !failures.is_empty() {
            bail!(
                "{} failed in the background: {failures:?}",
                client.participant_id()
            );
        }
    }
    Ok(())
}
