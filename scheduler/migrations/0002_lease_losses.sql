-- Leases lost on a package (expired, or its worker restarted) in the current build.
ALTER TABLE packages ADD COLUMN losses INTEGER NOT NULL DEFAULT 0;
