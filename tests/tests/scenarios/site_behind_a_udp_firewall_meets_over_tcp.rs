//! A site whose firewall drops every UDP packet joins over ICE-TCP: the server offers a
//! passive TCP candidate beside its UDP one, the site's Chromium connects to it, and the
//! two sites see and hear each other, while the site with UDP keeps using UDP. The TCP
//! candidate is on a port of its own (`ice_tcp_port`), as a firewall that lets only a
//! chosen TCP port through needs.
//!
//! The blocked site's Chromium runs in a network namespace of its own behind a "line"
//! namespace (`tests/src/netns.rs`), with iptables dropping UDP both ways there.

use std::time::Duration;

use anyhow::bail;
use cau_tests::browser::run_script_for;
use cau_tests::netns::{SERVER_IP, SiteNamespace, server_config};
use cau_tests::server::start_test_server_with;
use cau_tests::shaping::run_in_private_network;

/// Free in the test's own network namespace, where nothing else listens.
const TCP_PORT: u16 = 4443;

#[test]
fn site_behind_a_udp_firewall_meets_over_tcp() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    let mut namespace = SiteNamespace::create()?;
    namespace.block_udp()?;
    let chromium = std::env::var("CAU_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let launcher = namespace.chromium_wrapper(&chromium)?;
    let config = server_config(&format!("ice_tcp_port = {TCP_PORT}\n"));
    let server = start_test_server_with(&config).await?;
    let report = run_script_for(
        "udp-blocked.mjs",
        &[&server.base_url(), "giao-ban", &launcher.to_string_lossy()],
        Duration::from_secs(90),
    )
    .await?;
    server.shutdown(Duration::from_secs(1)).await;
    drop(namespace);

    let mountain = &report["pages"]["Mountain"]["transport"];
    let office = &report["pages"]["Office"]["transport"];
    if mountain["local_protocol"] != "tcp" || mountain["remote_protocol"] != "tcp" {
        bail!("the site behind the firewall should be on TCP: {report}");
    }
    if mountain["remote_address"] != format!("{SERVER_IP}:{TCP_PORT}").as_str() {
        bail!("the TCP pair should reach the configured port {TCP_PORT}: {report}");
    }
    if office["local_protocol"] != "udp" {
        bail!("the site with UDP should stay on UDP: {report}");
    }
    eprintln!("figures: {}", report["pages"]);
    Ok(())
}
