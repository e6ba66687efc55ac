-- Kept so both backends share versions and their release statement. SQLite never reads it: one
-- process owns the file, and it reads a connection after taking its lease (see `Store`).
ALTER TABLE refresh_locks ADD COLUMN settled INTEGER;
