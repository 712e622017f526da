//! A slow line for one site: its UDP to and from the server is held for a fixed time
//! each way, as a long mountain line (or a satellite hop) would.
//!
//! This kernel has no `sch_netem`, so the delay is made in user space: an iptables
//! `DNAT` rule (in the test's own network namespace) sends the site's media to a relay
//! instead of the server; the relay holds each datagram for the one-way delay, then
//! passes it on to the server from an address of its own, and the server's answers back
//! the same way. Connection tracking undoes the `DNAT` on the way back, so the site sees
//! its answers come from the server's address as before. ICE does not notice: the server
//! simply sees the site at the relay's address. Only inside
//! [`crate::shaping::run_in_private_network`].

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::shaping::run;

/// A relay that delays one site's media both ways; undone when dropped.
pub struct DelayLine {
    rule: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl DelayLine {
    /// Delays by `one_way` every UDP datagram between `site` and the server's media
    /// socket `server`. `relay_ip` is a loopback address no one else uses: the server
    /// sees the site there.
    pub async fn start(
        site: Ipv4Addr,
        server: SocketAddr,
        relay_ip: Ipv4Addr,
        one_way: Duration,
    ) -> anyhow::Result<DelayLine> {
        let front = Arc::new(
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .context("binding the relay's site side")?,
        );
        let back = Arc::new(
            UdpSocket::bind((relay_ip, 0))
                .await
                .context("binding the relay's server side")?,
        );
        let front_port = front.local_addr()?.port();
        let rule: Vec<String> = [
            "OUTPUT",
            "-s",
            &site.to_string(),
            "-d",
            &server.ip().to_string(),
            "-p",
            "udp",
            "--dport",
            &server.port().to_string(),
            "-j",
            "DNAT",
            "--to-destination",
            &format!("127.0.0.1:{front_port}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut add = vec!["iptables-legacy", "-t", "nat", "-A"];
        add.extend(rule.iter().map(String::as_str));
        run(&add)?;

        // The site's address, learnt from its first datagram.
        let (site_addr_tx, mut site_addr_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
        let (to_server, from_site) = mpsc::unbounded_channel();
        let (to_site, from_server) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        {
            let front = front.clone();
            tasks.push(tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                while let Ok((length, from)) = front.recv_from(&mut buffer).await {
                    let _ = site_addr_tx.send(Some(from));
                    let _ = to_server.send((Instant::now() + one_way, buffer[..length].to_vec()));
                }
            }));
        }
        {
            let back = back.clone();
            tasks.push(tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                while let Ok((length, _)) = back.recv_from(&mut buffer).await {
                    let _ = to_site.send((Instant::now() + one_way, buffer[..length].to_vec()));
                }
            }));
        }
        {
            let back = back.clone();
            tasks.push(tokio::spawn(async move {
                send_when_due(from_site, |bytes| {
                    let back = back.clone();
                    async move {
                        let _ = back.send_to(&bytes, server).await;
                    }
                })
                .await;
            }));
        }
        tasks.push(tokio::spawn(async move {
            send_when_due(from_server, |bytes| {
                let front = front.clone();
                let site = *site_addr_rx.borrow_and_update();
                async move {
                    if let Some(site) = site {
                        let _ = front.send_to(&bytes, site).await;
                    }
                }
            })
            .await;
        }));
        Ok(DelayLine { rule, tasks })
    }
}

/// Sends each queued datagram at its due time, in order.
async fn send_when_due<F, Fut>(
    mut queue: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    mut send: F,
) where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut waiting: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    loop {
        let next_due = waiting.front().map(|(due, _)| *due);
        tokio::select! {
            item = queue.recv() => match item {
                Some(item) => waiting.push_back(item),
                None => return,
            },
            _ = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            } => {
                while waiting.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                    if let Some((_, bytes)) = waiting.pop_front() {
                        send(bytes).await;
                    }
                }
            }
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let mut delete = vec!["iptables-legacy", "-t", "nat", "-D"];
        delete.extend(self.rule.iter().map(String::as_str));
        let _ = run(&delete);
    }
}
