-- Connect sessions of current Nango's kind (POST /connect/sessions with an end user): what the
-- session allows and gives to the connection it makes (JSON: end user, tags, allowed
-- integrations, per-integration defaults; NULL for a session bound to one config key and
-- connection id). Such a session is read, not used up, until a flow stores its connection.
ALTER TABLE connect_sessions ADD COLUMN spec TEXT;
-- The connect session (its token's hash) a flow started with, used up when the flow stores
-- the connection.
ALTER TABLE oauth_sessions ADD COLUMN connect_session_hash TEXT;
