-- Refresh leases live seconds and are worth nothing after a crash (a holder that survives one
-- finds its lease gone and its final write is conditional anyway), so they skip the WAL: taking
-- and releasing a lease commits without waiting for a flush to disk, two of the three commits
-- of a refresh. A crash empties the table, which is what an expiry would do a few seconds later.
ALTER TABLE refresh_locks SET UNLOGGED;
