-- PostgreSQL announces changes to other replicas here; a SQLite file has one server process,
-- whose store evicts its own writes from the read cache. Kept so both backends share versions.
SELECT 1;
