//! Keyframe-request throttling for one published video track.
//!
//! Every subscriber that loses a packet, joins, or switches layer asks for a keyframe.
//! Passed on one for one, a meeting of 58 sites would make a publisher encode keyframe
//! after keyframe, each several times the size of a normal frame, and choke its uplink.
//! So at most one request per interval reaches the publisher. A request that arrives
//! inside the interval is not lost: it is remembered and sent when the interval ends,
//! so the subscriber who asked still gets its keyframe, just a little later.

use std::time::{Duration, Instant};

/// Decides when keyframe requests may reach a publisher.
#[derive(Debug)]
pub(crate) struct KeyframeThrottle {
    interval: Duration,
    last_sent: Option<Instant>,
    /// A request arrived inside the interval and waits for it to end.
    deferred: bool,
}

impl KeyframeThrottle {
    pub(crate) fn new(interval: Duration) -> KeyframeThrottle {
        KeyframeThrottle {
            interval,
            last_sent: None,
            deferred: false,
        }
    }

    /// A subscriber asks for a keyframe. Returns true if the request must go out now;
    /// otherwise it is deferred until [`KeyframeThrottle::poll_deferred`] releases it.
    pub(crate) fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now < last + self.interval => {
                self.deferred = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.deferred = false;
                true
            }
        }
    }

    /// Returns true, once, when a deferred request is due at `now`.
    pub(crate) fn poll_deferred(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => self.request(now),
            _ => false,
        }
    }

    /// When a deferred request falls due, if one waits.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if !self.deferred {
            return None;
        }
        self.last_sent.map(|last| last + self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_goes_out_at_once() {
        let start = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(throttle.request(start));
        assert_eq!(throttle.deadline(), None);
    }

    #[test]
    fn a_burst_becomes_one_request_now_and_one_at_the_end_of_the_interval() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut throttle = KeyframeThrottle::new(ms(500));
        let mut sent = vec![];
        // Fifty subscribers ask within 100 ms, simulated one every 2 ms.
        for i in 0..50 {
            let now = start + ms(2 * i);
            if throttle.request(now) {
                sent.push(now - start);
            }
            if throttle.poll_deferred(now) {
                sent.push(now - start);
            }
        }
        assert_eq!(sent, vec![ms(0)]);
        assert_eq!(throttle.deadline(), Some(start + ms(500)));
        assert!(!throttle.poll_deferred(start + ms(499)));
        assert!(throttle.poll_deferred(start + ms(500)));
        // Released once only.
        assert!(!throttle.poll_deferred(start + ms(501)));
        assert_eq!(throttle.deadline(), None);
    }

    #[test]
    fn requests_spaced_wider_than_the_interval_all_go_out() {
        let start = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        for i in 0..10 {
            assert!(throttle.request(start + Duration::from_millis(600 * i)));
        }
    }
}
