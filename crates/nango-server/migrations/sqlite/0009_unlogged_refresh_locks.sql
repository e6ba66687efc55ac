-- PostgreSQL keeps refresh leases out of its WAL here; SQLite (synchronous=NORMAL in WAL mode)
-- does not flush on commit anyway. Kept so both backends share versions.
SELECT 1;
