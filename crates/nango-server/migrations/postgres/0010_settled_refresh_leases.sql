-- What a refresh lease's last holder left the connection as: the xmin of the connection version
-- it wrote as it released the lease (NULL: unknown). Whoever takes the lease next reads the
-- connection in the same statement and uses that read only when it is this version (see
-- `PostgresStore::lock_refresh_and_read`). Released rows are kept from now on, so a missing row
-- means the lease was never held.
ALTER TABLE refresh_locks ADD COLUMN settled xid;
