-- Redirect mode: where to send the browser back to when the flow ends.
ALTER TABLE oauth_sessions ADD COLUMN return_to TEXT;
