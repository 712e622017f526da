-- Line tests: what each site's test of its line measured and concluded, one row per
-- test, kept as the site's history for IT staff. The chair is shown each invited
-- site's latest. Times are milliseconds since the Unix epoch, like everywhere else.
CREATE TABLE line_tests (
    site_code TEXT NOT NULL REFERENCES sites (code),
    -- The meeting whose join link ran the test; kept when the meeting goes.
    meeting_id TEXT REFERENCES meetings (id) ON DELETE SET NULL,
    tested_at BIGINT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('ready', 'marginal', 'not_ready')),
    -- Worst first, as a JSON array of {"code", "severity", "measured", "limit"}: a
    -- list read and written whole, never queried by its parts.
    reasons TEXT NOT NULL,
    -- False when the media connection never came up: every figure below is then 0.
    connected BOOLEAN NOT NULL,
    completed BOOLEAN NOT NULL,
    rtt_ms DOUBLE PRECISION,
    jitter_ms DOUBLE PRECISION,
    loss_percent DOUBLE PRECISION,
    download_kbps DOUBLE PRECISION NOT NULL,
    upload_kbps DOUBLE PRECISION NOT NULL,
    -- What a meeting needed of each direction when the test ran.
    download_needed_kbps BIGINT NOT NULL,
    upload_needed_kbps BIGINT NOT NULL,
    audio BOOLEAN NOT NULL,
    video BOOLEAN NOT NULL,
    duration_ms BIGINT NOT NULL
);

CREATE INDEX line_tests_by_site ON line_tests (site_code, tested_at);
