//! The remote addresses one peer may introduce: a client that knows its ICE password
//! and checks from address after address binds no more than `MAX_PEER_ADDRESSES` and
//! keeps its media on the path it uses; it may trickle no more than
//! `MAX_TRICKLED_CANDIDATES`; a client that moves to a new address (a network change)
//! keeps its media too.

use std::net::SocketAddr;
use std::time::Duration;

use str0m::Candidate;
use str0m::ice::{StunMessage, TransId};

use super::{World, frames_from, run_meeting};
use crate::core::{MAX_PEER_ADDRESSES, MAX_TRICKLED_CANDIDATES};
use crate::{Command, MediaKind, PeerEvent, PeerId};

/// A good ICE check to the core from the client at `index`, as its browser would send
/// it from any of its addresses: our username fragment and password from the core's
/// answer, the client's own username fragment.
fn good_check(world: &mut World, index: usize) -> Vec<u8> {
    let client = &mut world.clients[index];
    let answer = client
        .events
        .iter()
        .find_map(|event| match event {
            PeerEvent::Answer { sdp } => Some(sdp.clone()),
            _ => None,
        })
        .expect("the client was answered");
    let value = |name: &str| {
        answer
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(str::to_owned)
            .expect("the answer has ICE credentials")
    };
    let (server_ufrag, server_password) = (value("a=ice-ufrag:"), value("a=ice-pwd:"));
    let client_ufrag = client.rtc.direct_api().local_ice_credentials().ufrag;
    let username = format!("{server_ufrag}:{client_ufrag}");
    let message =
        StunMessage::binding_request(&username, TransId::new(), true, 0, 1_000_000, false);
    let mut buffer = vec![0; 1500];
    let crypto = str0m::crypto::from_feature_flags();
    let length = message
        .to_bytes(
            Some(server_password.as_bytes()),
            &mut buffer,
            |key, parts| crypto.sha1_hmac_provider.sha1_hmac(key, parts),
        )
        .unwrap();
    buffer.truncate(length);
    buffer
}

/// The addresses the core has bound to `peer`.
fn bound(world: &World, peer: PeerId) -> usize {
    world
        .sfu
        .by_address
        .values()
        .filter(|&&p| p == peer)
        .count()
}

/// Moves the client at `index` to `to`, as a network change does: its old address is
/// gone, its ICE agent checks from the new one and nominates it.
fn move_client(world: &mut World, index: usize, to: SocketAddr) {
    let client = &mut world.clients[index];
    let old = Candidate::host(client.addr, "udp").unwrap();
    client
        .rtc
        .add_local_candidate(Candidate::host(to, "udp").unwrap());
    assert!(client.rtc.direct_api().invalidate_candidate(&old));
    client.addr = to;
}

/// Whether, over one more second of meeting, `a` and `b` each received at least 40 of
/// the other's audio frames (50 are sent).
fn media_flows_both_ways(world: &mut World, a: usize, b: usize) -> bool {
    let count = |world: &World, receiver: usize, sender: usize| {
        let source = world.client(sender).peer;
        frames_from(world.client(receiver), source, MediaKind::Audio).len()
    };
    let before = (count(world, b, a), count(world, a, b));
    run_meeting(world, Duration::from_secs(1));
    let after = (count(world, b, a), count(world, a, b));
    after.0 >= before.0 + 40 && after.1 >= before.1 + 40
}

#[test]
fn a_peer_checking_from_many_addresses_binds_no_more_than_its_share() {
    let mut world = World::new();
    let a = world.join(1);
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(1));
    let peer = world.client(a).peer;
    assert_eq!(bound(&world, peer), 1);

    // a's client checks from 500 ports of another address, all with the right password:
    // each check the core passes to str0m would stay in its list for good.
    let checks = 500;
    let check = good_check(&mut world, a);
    for port in 0..checks {
        let from = SocketAddr::from(([10, 0, 9, 9], 10_000 + port));
        world.sfu.handle_datagram(from, &check, world.now);
    }
    while world.sfu.poll_transmit().is_some() {}
    assert_eq!(bound(&world, peer), MAX_PEER_ADDRESSES);
    let refused = world.sfu.stats().addresses_refused;
    assert_eq!(
        refused,
        u64::from(checks) - (MAX_PEER_ADDRESSES as u64 - 1),
        "every check past the limit is refused before str0m sees it"
    );
    // An address already bound still gets through: the peer's own path is not cut.
    let bound_port = SocketAddr::from(([10, 0, 9, 9], 10_000));
    world.sfu.handle_datagram(bound_port, &check, world.now);
    assert_eq!(world.sfu.stats().addresses_refused, refused);

    // The path in use still carries media both ways.
    assert!(
        media_flows_both_ways(&mut world, a, b),
        "media stalled after the checks"
    );
    assert_eq!(world.sfu.stats().peers, 2);
    assert_eq!(
        bound(&world, world.client(b).peer),
        1,
        "b's share is its own"
    );
}

#[test]
fn a_client_that_moves_keeps_its_media_on_its_newest_address() {
    let mut world = World::new();
    let a = world.join(1);
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(1));
    assert!(media_flows_both_ways(&mut world, a, b));

    // Three network changes, each to a new address: every time the newest address is
    // bound and carries the media.
    for step in 0..3u16 {
        let to = SocketAddr::from(([10, 0, 7, 1 + step as u8], 4000 + step));
        move_client(&mut world, a, to);
        // The client sends from its new address at once; the core, which only answers
        // checks (ICE-lite), sends to the old one until that path has been silent for
        // str0m's 15 seconds.
        run_meeting(&mut world, Duration::from_secs(16));
        assert!(
            world.sfu.by_address.contains_key(&to),
            "move {step}: the new address was never bound"
        );
        assert!(
            media_flows_both_ways(&mut world, a, b),
            "move {step}: media stalled on the new address"
        );
    }
    assert_eq!(world.sfu.stats().addresses_refused, 0);
    assert_eq!(world.client(a).gone, None);
}

#[test]
fn a_peer_may_trickle_only_so_many_candidates() {
    let mut world = World::new();
    let a = world.join(1);
    let peer = world.client(a).peer;
    let refusals = |world: &World| {
        world.clients[a]
            .events
            .iter()
            .filter(|event| matches!(event, PeerEvent::Rejected { .. }))
            .count()
    };
    for port in 0..MAX_TRICKLED_CANDIDATES as u16 + 8 {
        let candidate = format!(
            "candidate:1 1 udp 2122260223 10.0.8.1 {} typ host",
            20_000 + port
        );
        world
            .sfu
            .handle_command(Command::RemoteCandidate { peer, candidate }, world.now);
        world.dispatch_events();
    }
    assert_eq!(
        refusals(&world),
        8,
        "the candidates past the limit are refused"
    );
    run_meeting(&mut world, Duration::from_secs(1));
    assert_eq!(world.client(a).gone, None, "the peer itself is kept");
}
