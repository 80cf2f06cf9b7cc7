-- The lease whose report was accepted for each package's last successful
-- build (its files come from incoming/<lease_id>/), and the stage paths of
-- the build before it that this one no longer has (removed when the files are
-- made visible; kept so that a restart can redo that step).
ALTER TABLE last_success ADD COLUMN lease_id TEXT;
ALTER TABLE last_success ADD COLUMN replaced TEXT NOT NULL DEFAULT '[]';
