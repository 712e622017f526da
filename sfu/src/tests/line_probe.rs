//! The line probe: an ICE agent that knows the probe's credentials gets answers from the
//! media socket and connects, with no peer made and no address bound; one that does not
//! know the password gets nothing.

use str0m::IceCreds;
use str0m::ice::{IceAgent, StunPacket, TransId};

use super::*;

const PAGE: &str = "10.0.7.7:40000";

/// A controlling agent, as a page's RTCPeerConnection is towards the server, whose
/// remote description names `remote` and the server's host candidate.
fn page_agent(remote: IceCreds) -> IceAgent {
    let crypto = str0m::crypto::from_feature_flags();
    let mut agent = IceAgent::with_hmac(IceCreds::new(), crypto.sha1_hmac_provider);
    agent.set_controlling(true);
    agent.set_remote_credentials(remote);
    agent.add_local_candidate(Candidate::host(PAGE.parse().unwrap(), "udp").unwrap());
    agent.add_remote_candidate(Candidate::host(SERVER.parse().unwrap(), "udp").unwrap());
    agent
}

/// Runs the agent against the core for up to `within`, and says when it connected.
fn connects_within(sfu: &mut Sfu, agent: &mut IceAgent, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut now = start;
    while now - start <= within {
        agent.handle_timeout(now);
        while let Some(check) = agent.poll_transmit() {
            assert_eq!(check.destination, SERVER.parse().unwrap());
            sfu.handle_datagram(check.source, &check.contents, now);
        }
        while let Some(answer) = sfu.poll_transmit() {
            assert_eq!(answer.destination, PAGE.parse().unwrap());
            let message = StunMessage::parse(&answer.contents).expect("the answer is STUN");
            agent.handle_packet(
                now,
                StunPacket {
                    proto: Protocol::Udp,
                    source: answer.source,
                    destination: answer.destination,
                    message,
                },
            );
        }
        if agent.state().is_connected() {
            return Some(now - start);
        }
        now += Duration::from_millis(10);
    }
    None
}

#[test]
fn a_page_with_the_probe_credentials_connects_to_no_peer() {
    let mut sfu = Sfu::new(test_config());
    let mut agent = page_agent(sfu.line_probe().clone());

    let took = connects_within(&mut sfu, &mut agent, Duration::from_secs(2));

    assert!(took.is_some(), "the page's agent never connected");
    let stats = sfu.stats();
    assert!(stats.line_probes_answered >= 1, "{stats:?}");
    assert_eq!(stats.peers, 0);
    assert!(sfu.by_address.is_empty(), "a probe bound an address");
}

#[test]
fn a_check_without_the_probe_password_is_not_answered() {
    let mut sfu = Sfu::new(test_config());
    let guessed = IceCreds {
        ufrag: sfu.line_probe().ufrag.clone(),
        pass: IceCreds::new().pass,
    };
    let mut agent = page_agent(guessed);

    let took = connects_within(&mut sfu, &mut agent, Duration::from_secs(2));

    assert_eq!(took, None);
    let stats = sfu.stats();
    assert_eq!(stats.line_probes_answered, 0, "{stats:?}");
    assert!(stats.datagrams_unroutable >= 1, "{stats:?}");
    assert!(sfu.by_address.is_empty());
}

#[test]
fn a_check_over_ice_tcp_is_answered_on_its_connection() {
    let tcp: SocketAddr = "10.0.0.1:5001".parse().unwrap();
    let mut sfu = Sfu::new(SfuConfig {
        tcp_candidate_addr: Some(tcp),
        ..test_config()
    });
    let creds = sfu.line_probe().clone();
    let crypto = str0m::crypto::from_feature_flags();
    let username = format!("{}:{}", creds.ufrag, IceCreds::new().ufrag);
    let check = StunMessage::binding_request(&username, TransId::new(), true, 0, 100, true);
    let mut buffer = vec![0; 1500];
    let length = check
        .to_bytes(Some(creds.pass.as_bytes()), &mut buffer, |key, parts| {
            crypto.sha1_hmac_provider.sha1_hmac(key, parts)
        })
        .unwrap();
    let page: SocketAddr = PAGE.parse().unwrap();

    sfu.handle_tcp_packet(page, &buffer[..length], Instant::now());

    let answer = sfu.poll_transmit().expect("the check was not answered");
    assert_eq!(answer.proto, Protocol::Tcp);
    assert_eq!((answer.source, answer.destination), (tcp, page));
    let message = StunMessage::parse(&answer.contents).unwrap();
    assert!(message.is_successful_binding_response());
    assert!(message.verify(creds.pass.as_bytes(), |key, parts| {
        crypto.sha1_hmac_provider.sha1_hmac(key, parts)
    }));
    assert_eq!(sfu.stats().peers, 0);
}
