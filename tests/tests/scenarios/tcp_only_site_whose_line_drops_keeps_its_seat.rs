//! A commune whose firewall passes only TCP (it meets over ICE-TCP) loses its line for
//! 30 s: as in `site_whose_line_drops_keeps_its_seat`, its browser reconnects by itself,
//! media is back within 2 s of the line, it keeps its seat and the floor, and the chair's
//! roll call shows it "reconnecting", never "left".
//!
//! No UDP reaches this commune, so its page can learn that the line is back only over
//! TCP: from the line probe over ICE-TCP (each probe connects afresh) or from `/healthz`
//! (where the browser may hand a new request to a connection attempt begun during the
//! outage). The report says which one told it.

use cau_tests::shaping::run_in_private_network;

use crate::site_whose_line_drops_keeps_its_seat::{Firewall, line_drops};

/// Free in the test's own network namespace, where nothing else listens.
const ICE_TCP_PORT: u16 = 4443;

#[test]
fn tcp_only_site_whose_line_drops_keeps_its_seat() -> anyhow::Result<()> {
    run_in_private_network(|| {
        line_drops(
            Firewall::TcpOnly {
                ice_tcp_port: ICE_TCP_PORT,
            },
            "30",
        )
    })
}
