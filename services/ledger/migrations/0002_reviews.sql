-- The experts' periodic review (`spinescreen monitor report --reviews FILE --record`): one row per
-- reviewed study, the latest review of it winning. Grafana's monthly agreement panel reads it.
CREATE TABLE reviews (
    study_uid          TEXT PRIMARY KEY,
    station_name       TEXT NOT NULL DEFAULT '',
    reviewed_at_ms     BIGINT NOT NULL,   -- when the review was recorded
    agree_conclusion   BOOLEAN,           -- NULL: not reviewed on this point
    agree_localisation BOOLEAN,
    interpretation     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reviews_reviewed ON reviews (reviewed_at_ms);
