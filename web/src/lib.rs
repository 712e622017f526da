//! Cầu's browser client, compiled into the binary.
//!
//! The files under `web/assets/` are plain HTML, CSS and JavaScript modules, served as
//! they are: no build step, so the README's two commands need nothing but cargo. Embedding
//! them means `cau serve` works from any directory and a deployment is one file.
//!
//! Third-party files live under `web/assets/vendor/`, copied from npm and committed, so
//! cargo still needs nothing else: uPlot (MIT, its licence beside it), which draws the
//! line-monitoring charts. `web/package.json` pins their versions; after changing one,
//! refresh the copies with `npm install --prefix web && npm run vendor --prefix web`.

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The bytes served.
    pub body: &'static [u8],
    /// The `Content-Type` header value.
    pub content_type: &'static str,
}

macro_rules! assets {
    ($($name:literal => $mime:literal,)*) => {
        /// Every embedded file, by its path under `web/assets/`.
        pub const ASSETS: &[(&str, Asset)] = &[
            $(($name, Asset { body: include_bytes!(concat!("../assets/", $name)), content_type: $mime }),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "join.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "i18n.js" => "text/javascript; charset=utf-8",
    "signaling.js" => "text/javascript; charset=utf-8",
    "home.js" => "text/javascript; charset=utf-8",
    "meeting.js" => "text/javascript; charset=utf-8",
    "call.js" => "text/javascript; charset=utf-8",
    "site.html" => "text/html; charset=utf-8",
    "site.js" => "text/javascript; charset=utf-8",
    "linetest.js" => "text/javascript; charset=utf-8",
    "line-test.html" => "text/html; charset=utf-8",
    "line-test-page.js" => "text/javascript; charset=utf-8",
    "schedule.html" => "text/html; charset=utf-8",
    "schedule.js" => "text/javascript; charset=utf-8",
    "monitor.html" => "text/html; charset=utf-8",
    "monitor.js" => "text/javascript; charset=utf-8",
    "vendor/uPlot.iife.min.js" => "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css" => "text/css; charset=utf-8",
}

/// The embedded file at `path` (relative to `web/assets/`, no leading slash).
pub fn asset(path: &str) -> Option<Asset> {
    ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, asset)| *asset)
}
