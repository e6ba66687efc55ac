-- Who a connection belongs to in the app, as current Nango records it: the end user (JSON
-- `{id, email, display_name, tags, organization: {id, display_name}}`, NULL when none was given)
-- and the connection's tags (JSON object of strings). Not bound to the credentials: neither
-- decides where tokens are sent.
ALTER TABLE connections ADD COLUMN end_user TEXT;
ALTER TABLE connections ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
