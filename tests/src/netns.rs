//! A site on a line of its own: the site's network namespace reaches the test's (where
//! the server listens) through a third namespace, the line, that routes between them.
//! The line's link towards the server can be taken down (`ip link set down`) and brought
//! back, as a commune's mountain line drops while the PC's own network card stays up.
//!
//! ```text
//! test namespace            line namespace                 site namespace
//! 10.77.0.1/24 ── veth ── 10.77.0.2 | 10.77.1.1 ── veth ── 10.77.1.2/24
//!   (server)      (cut here: the link goes down)              (Chromium)
//! ```
//!
//! Cutting the line, not the site's own card, matters: Chromium learns of a change to
//! its own interfaces only after a debounce of about two seconds, which a site whose
//! uplink fails does not see. Programs run in the site's namespace through
//! `ip netns exec`; [`SiteNamespace::chromium_wrapper`] writes a launcher that starts
//! Debian's Chromium there, for Playwright to drive over its pipe. Only inside
//! [`crate::shaping::run_in_private_network`]: the namespaces and links exist only for
//! this test and are removed when it is dropped.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

use crate::shaping::run;

/// The server's address, in the test's namespace.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The site's address, in its namespace.
pub const SITE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);

/// A test server's configuration for a site on a line: HTTP and media on
/// [`SERVER_IP`], the test's end of the line, which the site's namespace reaches (the
/// loopback addresses it does not), with `media` laid into the `[media]` section.
pub fn server_config(media: &str) -> String {
    format!(
        "[http]\nlisten = \"{SERVER_IP}:0\"\n\
         [media]\nudp_listen = \"{SERVER_IP}:0\"\nadvertised_ip = \"{SERVER_IP}\"\n{media}"
    )
}

/// A site namespace behind a line namespace. Both removed on drop.
pub struct SiteNamespace {
    name: String,
    line: String,
    /// The line's link towards the server, in the line's namespace.
    uplink: String,
    /// The line's link towards the site, in the line's namespace: what leaves by it is
    /// the site's downlink.
    downlink: String,
    wrapper: Option<PathBuf>,
}

impl SiteNamespace {
    /// Makes the namespaces and their links, all up, with routes both ways.
    pub fn create() -> anyhow::Result<SiteNamespace> {
        // Unique per process and per namespace made in it, since two scenarios of one
        // test binary may run at once; short, since a link's name has at most 15 bytes.
        static MADE: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = SiteNamespace {
            name: format!("cau-site-{id}"),
            line: format!("cau-line-{id}"),
            uplink: format!("caur{id}"),
            downlink: format!("caul{id}"),
            wrapper: None,
        };
        let (site, line) = (namespace.name.as_str(), namespace.line.as_str());
        let (server_end, uplink) = (format!("cauh{id}"), namespace.uplink.as_str());
        let (line_end, site_end) = (namespace.downlink.clone(), format!("caus{id}"));
        run(&["ip", "netns", "add", site])?;
        run(&["ip", "netns", "add", line])?;
        run(&[
            "ip",
            "link",
            "add",
            &server_end,
            "type",
            "veth",
            "peer",
            "name",
            uplink,
        ])?;
        run(&[
            "ip", "link", "add", &line_end, "type", "veth", "peer", "name", &site_end,
        ])?;
        run(&["ip", "link", "set", uplink, "netns", line])?;
        run(&["ip", "link", "set", &line_end, "netns", line])?;
        run(&["ip", "link", "set", &site_end, "netns", site])?;

        run(&["ip", "addr", "add", "10.77.0.1/24", "dev", &server_end])?;
        run(&["ip", "link", "set", &server_end, "up"])?;
        run(&["ip", "route", "add", "10.77.1.0/24", "via", "10.77.0.2"])?;

        let in_line = |command: &[&str]| in_namespace(line, command);
        in_line(&["ip", "link", "set", "lo", "up"])?;
        in_line(&["ip", "addr", "add", "10.77.0.2/24", "dev", uplink])?;
        in_line(&["ip", "addr", "add", "10.77.1.1/24", "dev", &line_end])?;
        in_line(&["ip", "link", "set", uplink, "up"])?;
        in_line(&["ip", "link", "set", &line_end, "up"])?;
        in_line(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
        // A mountain line that fails loses packets silently: nothing on it answers with
        // an ICMP error, which would tell the site's TCP at once that its connection
        // attempt failed. While the link is down its own route is gone and this one
        // takes over; while it is up, the link's route wins on its lower metric.
        in_line(&[
            "ip",
            "route",
            "add",
            "blackhole",
            "10.77.0.0/24",
            "metric",
            "4000",
        ])?;

        let in_site = |command: &[&str]| in_namespace(site, command);
        in_site(&["ip", "link", "set", "lo", "up"])?;
        in_site(&["ip", "addr", "add", "10.77.1.2/24", "dev", &site_end])?;
        in_site(&["ip", "link", "set", &site_end, "up"])?;
        in_site(&["ip", "route", "add", "default", "via", "10.77.1.1"])?;
        Ok(namespace)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line's namespace, where [`SiteNamespace::uplink`] is.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The line's link towards the server: down, the site is cut off.
    pub fn uplink(&self) -> &str {
        &self.uplink
    }

    /// The line's link towards the site: a rate cap on it (`tc` in [`SiteNamespace::line`])
    /// caps the site's downlink.
    pub fn downlink(&self) -> &str {
        &self.downlink
    }

    /// Brings the line up or takes it down.
    pub fn set_line(&self, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        in_namespace(&self.line, &["ip", "link", "set", &self.uplink, state])
    }

    /// Drops every UDP packet the site sends or receives, as a firewall that lets only
    /// TCP through would (iptables in the site's own namespace).
    pub fn block_udp(&self) -> anyhow::Result<()> {
        for chain in ["OUTPUT", "INPUT"] {
            in_namespace(
                &self.name,
                &["iptables-legacy", "-A", chain, "-p", "udp", "-j", "DROP"],
            )?;
        }
        Ok(())
    }

    /// A script that runs Chromium inside the namespace with the arguments it is given.
    pub fn chromium_wrapper(&mut self, chromium: &str) -> anyhow::Result<PathBuf> {
        let path = std::env::temp_dir().join(format!("{}-chromium.sh", self.name));
        let script = format!(
            "#!/bin/sh\nexec ip netns exec {} {chromium} \"$@\"\n",
            self.name
        );
        std::fs::write(&path, script).context("writing the Chromium launcher")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        self.wrapper = Some(path.clone());
        Ok(path)
    }
}

fn in_namespace(namespace: &str, command: &[&str]) -> anyhow::Result<()> {
    let mut full = vec!["ip", "netns", "exec", namespace];
    full.extend_from_slice(command);
    run(&full)
}

impl Drop for SiteNamespace {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the pairs with them.
        for namespace in [&self.name, &self.line] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
        if let Some(wrapper) = &self.wrapper {
            let _ = std::fs::remove_file(wrapper);
        }
    }
}
