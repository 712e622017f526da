//! The default site directory: `config/sites.toml`, compiled in, parsed into [`Site`]s.
//!
//! The store seeds its database with these sites on the first start only; afterwards
//! the directory lives in the database and is edited through the admin API. A fault
//! in the shipped file is a build defect, caught by this module's tests.

use serde::Deserialize;

use crate::model::{InputError, Site, SiteCode, SiteKind, SiteName, Tier};

/// Why a site directory file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The text is not TOML of the documented shape.
    #[error("the site directory is not valid: {0}")]
    Syntax(String),
    /// One entry holds a bad value.
    #[error("site number {index} of the directory: {source}")]
    Site { index: usize, source: InputError },
    /// Two entries share a code.
    #[error("site code {0} appears twice in the directory")]
    Duplicate(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    site: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    tier: String,
    kind: Option<String>,
}

/// The shipped default directory, in its file's order.
pub fn default_sites() -> Result<Vec<Site>, DirectoryError> {
    parse(cau_config::DEFAULT_SITES_TOML)
}

/// Parses a directory file in the format of `config/sites.toml`.
pub fn parse(text: &str) -> Result<Vec<Site>, DirectoryError> {
    let file: File =
        toml::from_str(text).map_err(|e| DirectoryError::Syntax(e.message().to_owned()))?;
    let mut seen = std::collections::BTreeSet::new();
    let mut sites = Vec::with_capacity(file.site.len());
    for (index, entry) in file.site.into_iter().enumerate() {
        let site = entry.into_site().map_err(|source| DirectoryError::Site {
            index: index + 1,
            source,
        })?;
        if !seen.insert(site.code.clone()) {
            return Err(DirectoryError::Duplicate(site.code.to_string()));
        }
        sites.push(site);
    }
    Ok(sites)
}

impl Entry {
    fn into_site(self) -> Result<Site, InputError> {
        let kind = self.kind.as_deref().map(SiteKind::parse).transpose()?;
        Site::new(
            SiteCode::parse(&self.code)?,
            SiteName::parse(&self.name)?,
            Tier::parse(&self.tier)?,
            kind,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strips Vietnamese diacritics the way the site codes were made: each accented
    /// letter becomes its base letter, `đ` becomes `d`.
    fn slug(name: &str) -> String {
        const GROUPS: &[(char, &str)] = &[
            ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
            ('e', "èéẻẽẹêềếểễệ"),
            ('i', "ìíỉĩị"),
            ('o', "òóỏõọôồốổỗộơờớởỡợ"),
            ('u', "ùúủũụưừứửữự"),
            ('y', "ỳýỷỹỵ"),
            ('d', "đ"),
        ];
        name.to_lowercase()
            .chars()
            .map(|c| {
                let base = GROUPS
                    .iter()
                    .find(|(_, accented)| accented.contains(c))
                    .map(|(base, _)| *base);
                match (base, c) {
                    (Some(base), _) => base,
                    (None, ' ') => '-',
                    (None, c) => c,
                }
            })
            .collect()
    }

    #[test]
    fn default_directory_has_the_58_sites_of_the_brief() {
        let sites = default_sites().unwrap();
        assert_eq!(sites.len(), 58);
        let count = |tier| sites.iter().filter(|s| s.tier == tier).count();
        assert_eq!(count(Tier::Central), 1);
        assert_eq!(count(Tier::Province), 1);
        assert_eq!(count(Tier::Commune), 56);
        let wards: Vec<&str> = sites
            .iter()
            .filter(|s| s.kind == Some(SiteKind::Ward))
            .map(|s| s.code.as_str())
            .collect();
        assert_eq!(wards, ["thuc-phan", "nung-tri-cao", "tan-giang"]);
        assert_eq!(sites[0].code.as_str(), "chinh-phu");
        assert_eq!(sites[1].name.as_str(), "UBND tỉnh Cao Bằng");
    }

    #[test]
    fn commune_codes_are_slugs_of_their_names() {
        for site in default_sites().unwrap() {
            if site.tier != Tier::Commune {
                continue;
            }
            let (prefix, rest) = match site.kind {
                Some(SiteKind::Ward) => ("Phường ", site.name.as_str()),
                Some(SiteKind::Commune) => ("Xã ", site.name.as_str()),
                None => panic!("{} has no kind", site.code),
            };
            let bare = rest
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{rest:?} should start with {prefix:?}"));
            assert_eq!(site.code.as_str(), slug(bare), "{rest}");
        }
        assert_eq!(slug("Đàm Thủy"), "dam-thuy");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let check = |text: &str, expected: &str| {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        };
        check("[[site]]\ncode = \"a\"\n", "missing field");
        check(
            "[[site]]\ncode = \"Ba\"\nname = \"B\"\ntier = \"commune\"",
            "site number 1",
        );
        check(
            "[[site]]\ncode = \"a\"\nname = \"A\"\ntier = \"commune\"\n\
             [[site]]\ncode = \"a\"\nname = \"A2\"\ntier = \"commune\"",
            "appears twice",
        );
        check(
            "[[site]]\ncode = \"a\"\nname = \"A\"\ntier = \"province\"\nkind = \"ward\"",
            "only for sites of the commune tier",
        );
    }
}
