//! Scenarios as data: which sites take part, in which role, what each publishes and which
//! streams each is expected to receive. The Cầu runner turns one into a scheduled meeting
//! (`cau.rs`); another server's runner (Janus's VideoRoom) can subscribe each receiver to
//! exactly the streams listed, so both carry the same load.

use std::sync::Arc;

use anyhow::{Context, bail};
use cau_tests::client::{MediaKind, VideoSizer};
use serde_json::Value;

/// The height, in device pixels, at which a site shows a video of the chair's layout: the
/// main view, as on a meeting room's screen.
pub const LARGE_HEIGHT: u32 = 720;

/// The height at which a site shows the other videos it receives: the thumbnails of the
/// province's and the central point's walls.
pub const THUMBNAIL_HEIGHT: u32 = 180;

/// A site's part in a meeting, as Cầu's join links name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Chair,
    Participant,
    Observer,
}

/// One simulated site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its code in the site directory.
    pub code: String,
    pub role: Role,
    /// Whether it publishes and sends audio (a microphone: every site has one; whether
    /// the server forwards it is the meeting's business).
    pub audio: bool,
    /// Whether it publishes and sends video.
    pub video: bool,
}

/// One stream a receiver must get: the `kind` of site `publisher`, by index in
/// [`Scenario::sites`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub receiver: usize,
    pub publisher: usize,
    pub kind: MediaKind,
}

/// A meeting to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub sites: Vec<Site>,
    /// The site holding the floor (chair mode), by index.
    pub floor: Option<usize>,
    /// The sites the chair shows large (`set_layout`), by index.
    pub layout: Vec<usize>,
    /// Every stream each receiver gets, and no other.
    pub expected: Vec<Expectation>,
}

/// A directory entry: code and tier (`central`, `province`, `commune`).
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    pub code: String,
    pub tier: String,
}

/// The directory as `GET /api/sites` returns it.
pub fn parse_directory(sites: &Value) -> anyhow::Result<Vec<DirectoryEntry>> {
    sites
        .as_array()
        .context("GET /api/sites did not answer a list")?
        .iter()
        .map(|site| {
            Ok(DirectoryEntry {
                code: site["code"]
                    .as_str()
                    .context("a site without code")?
                    .to_owned(),
                tier: site["tier"]
                    .as_str()
                    .context("a site without tier")?
                    .to_owned(),
            })
        })
        .collect()
}

impl Scenario {
    /// The province's all-hands meeting: the province chairs in chair mode, the central
    /// point watches as an observer, `communes` communes take part (56 in Cao Bằng), the
    /// first commune holds the floor, and the chair's layout shows the chair alone. So:
    /// every commune receives the chair's video; every site hears the chair and the
    /// floor holder; the province and the central point receive every site's video (the
    /// thumbnails wall). Every site publishes audio and video; the server forwards the
    /// communes' audio only from the floor holder.
    pub fn all_hands(directory: &[DirectoryEntry], communes: usize) -> anyhow::Result<Scenario> {
        let of_tier = |tier: &'static str| directory.iter().filter(move |s| s.tier == tier);
        let province = of_tier("province")
            .next()
            .context("no province in the directory")?;
        let central = of_tier("central")
            .next()
            .context("no central point in the directory")?;
        let communes: Vec<&DirectoryEntry> = of_tier("commune").take(communes).collect();
        if communes.is_empty() {
            bail!("no communes in the directory");
        }
        let site = |entry: &DirectoryEntry, role| Site {
            code: entry.code.clone(),
            role,
            audio: true,
            video: true,
        };
        let mut sites = vec![site(province, Role::Chair), site(central, Role::Observer)];
        sites.extend(communes.iter().map(|c| site(c, Role::Participant)));
        let chair = 0;
        let floor = 2;
        let mut scenario = Scenario {
            name: "all-hands",
            sites,
            floor: Some(floor),
            layout: vec![chair],
            expected: Vec::new(),
        };
        scenario.expected = scenario.expected_by_cau_rules();
        Ok(scenario)
    }

    /// The streams each site receives by the rules of docs/signaling.md: the chair and
    /// observers receive every site's video, participants the video of the layout's
    /// sites; everyone hears the chair and the floor holder (chair mode), never an
    /// observer, never themselves.
    fn expected_by_cau_rules(&self) -> Vec<Expectation> {
        let mut expected = Vec::new();
        for (receiver, site) in self.sites.iter().enumerate() {
            for (publisher, other) in self.sites.iter().enumerate() {
                if publisher == receiver {
                    continue;
                }
                let sees_all = site.role != Role::Participant;
                if other.video && (sees_all || self.layout.contains(&publisher)) {
                    expected.push(Expectation {
                        receiver,
                        publisher,
                        kind: MediaKind::Video,
                    });
                }
                let heard = other.role == Role::Chair || self.floor == Some(publisher);
                if other.audio && heard {
                    expected.push(Expectation {
                        receiver,
                        publisher,
                        kind: MediaKind::Audio,
                    });
                }
            }
        }
        expected
    }

    /// The ramp: the province chairs; `shown` communes publish audio and video and are on
    /// the chair's layout with it (the first holds the floor); `subscribers` communes
    /// publish only their microphones, which the server does not forward in chair mode,
    /// and each receives the shown sites' video and the chair's and floor holder's audio.
    pub fn ramp(chair: &str, shown: &[String], subscribers: &[String]) -> Scenario {
        let site = |code: &String, role, video| Site {
            code: code.clone(),
            role,
            audio: true,
            video,
        };
        let mut sites = vec![site(&chair.to_owned(), Role::Chair, true)];
        sites.extend(shown.iter().map(|c| site(c, Role::Participant, true)));
        sites.extend(
            subscribers
                .iter()
                .map(|c| site(c, Role::Participant, false)),
        );
        let mut scenario = Scenario {
            name: "ramp",
            floor: (!shown.is_empty()).then_some(1),
            layout: (0..=shown.len()).collect(),
            sites,
            expected: Vec::new(),
        };
        scenario.expected = scenario.expected_by_cau_rules();
        scenario
    }

    /// How site `receiver` lays out the videos it receives, as its browser would report
    /// it (`video_sizes`): the layout's sites large, every other one a thumbnail. A
    /// participant of no known site is taken as shown large, as the server takes a video
    /// not reported.
    pub fn video_sizer(&self, receiver: usize) -> VideoSizer {
        let large: Vec<String> = self
            .layout
            .iter()
            .filter(|&&site| site != receiver)
            .map(|&site| self.sites[site].code.clone())
            .collect();
        VideoSizer(Arc::new(move |_track, site| match site {
            Some(code) if !large.iter().any(|shown| shown == code) => THUMBNAIL_HEIGHT,
            _ => LARGE_HEIGHT,
        }))
    }

    pub fn chair(&self) -> Option<usize> {
        self.sites.iter().position(|s| s.role == Role::Chair)
    }

    /// How many streams of `kind` the server sends in all.
    pub fn down_tracks(&self, kind: MediaKind) -> usize {
        self.expected.iter().filter(|e| e.kind == kind).count()
    }

    /// The streams site `receiver` is expected to get.
    pub fn expected_by(&self, receiver: usize) -> impl Iterator<Item = &Expectation> {
        self.expected.iter().filter(move |e| e.receiver == receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(communes: usize) -> Vec<DirectoryEntry> {
        let entry = |code: &str, tier: &str| DirectoryEntry {
            code: code.to_owned(),
            tier: tier.to_owned(),
        };
        let mut sites = vec![entry("chinh-phu", "central"), entry("cao-bang", "province")];
        sites.extend((0..communes).map(|i| entry(&format!("xa-{i}"), "commune")));
        sites
    }

    #[test]
    fn all_hands_of_58_sites_forwards_what_the_issue_describes() {
        let scenario = Scenario::all_hands(&directory(56), 56).unwrap();
        assert_eq!(scenario.sites.len(), 58);
        // Communes: the chair's video. Province and central: the 57 others each.
        assert_eq!(scenario.down_tracks(MediaKind::Video), 56 + 57 + 57);
        // Everyone but the chair hears the chair; everyone but the floor holder hears it.
        assert_eq!(scenario.down_tracks(MediaKind::Audio), 57 + 57);
        let commune = 10;
        let got: Vec<_> = scenario
            .expected_by(commune)
            .map(|e| (e.publisher, e.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, MediaKind::Video),
                (0, MediaKind::Audio),
                (2, MediaKind::Audio)
            ]
        );
    }
}
