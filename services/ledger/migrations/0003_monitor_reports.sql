-- The figures of each recorded review (`spinescreen monitor report --reviews FILE --record`),
-- for the console's monitoring page: one row per distinct worksheet, recording the same sheet
-- again replaces its row.
CREATE TABLE monitor_reports (
    id               BIGSERIAL PRIMARY KEY,
    worksheet_sha256 TEXT NOT NULL UNIQUE,  -- of the worksheet's text
    source           TEXT NOT NULL DEFAULT '', -- the worksheet's file name, no directory
    recorded_at_ms   BIGINT NOT NULL,
    studies          INTEGER NOT NULL,
    report           JSONB NOT NULL         -- as `monitor report --json` prints it
);
CREATE INDEX monitor_reports_recorded ON monitor_reports (recorded_at_ms);
