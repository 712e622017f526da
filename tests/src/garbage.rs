//! Hostile datagrams for the media port: random bytes, STUN binding requests with
//! forged credentials, and RTP- and DTLS-looking noise, the same every run (seeded).
//! The garbage scenario sends them during a call; `cau-load flood` raises their rate
//! until the call suffers.

/// The `index`-th datagram of the mix, in turn: random bytes; an ICE check naming the
/// server's real username fragment `server_ufrag` with a forged MESSAGE-INTEGRITY; an
/// ICE check for a user that does not exist; RTP-looking (version 2) and DTLS-looking
/// (content type 22) noise.
pub fn datagram(index: u64, server_ufrag: &str, random: &mut Lcg) -> Vec<u8> {
    let length = random.below(1400);
    match index % 5 {
        0 => random.bytes(1 + length),
        1 => stun_binding_request(&format!("{server_ufrag}:evil"), random),
        2 => stun_binding_request("nobody:evil", random),
        3 => [vec![0x80, 0x60], random.bytes(10 + length % 1000)].concat(),
        _ => [vec![22, 0xfe, 0xfd], random.bytes(10 + length % 300)].concat(),
    }
}

/// A well-formed STUN binding request (RFC 8489) for `username`, with a random
/// MESSAGE-INTEGRITY and a correct FINGERPRINT, so it passes parsing and reaches the
/// credential check, where it must fail.
pub fn stun_binding_request(username: &str, random: &mut Lcg) -> Vec<u8> {
    fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    let mut body = Vec::new();
    attribute(&mut body, 0x0006, username.as_bytes());
    attribute(&mut body, 0x0024, &random.bytes(4));
    attribute(&mut body, 0x802a, &random.bytes(8));
    attribute(&mut body, 0x0008, &random.bytes(20));
    let mut message = Vec::new();
    message.extend_from_slice(&0x0001u16.to_be_bytes());
    message.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
    message.extend_from_slice(&0x2112_a442u32.to_be_bytes());
    message.extend_from_slice(&random.bytes(12));
    message.extend_from_slice(&body);
    let fingerprint = crc32(&message) ^ 0x5354_554e;
    attribute(&mut message, 0x8028, &fingerprint.to_be_bytes());
    message
}

/// The server's ICE username fragment in an SDP it sent.
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim().strip_prefix("a=ice-ufrag:"))
}

/// Datagrams the kernel dropped for the UDP socket bound to `port` (its receive buffer
/// was full), from /proc/net/udp, to tell loss in the server from loss elsewhere.
pub fn kernel_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bound_here = fields
            .get(1)
            .is_some_and(|address| address.ends_with(&local));
        bound_here.then(|| fields.last()?.parse().ok()).flatten()
    })
}

/// CRC-32 (ISO-HDLC), as STUN's FINGERPRINT uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small seeded generator: the same garbage every run.
pub struct Lcg(pub u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
