-- Who acted (issue 13): `*_by` is the authenticated identity (the API
-- token, a local account, haven); a name the person declared, which
-- nothing verifies, is kept beside it, never instead of it.
ALTER TABLE alerts ADD COLUMN acknowledged_declared TEXT;
ALTER TABLE alerts ADD COLUMN resolved_declared TEXT;
ALTER TABLE maintenance ADD COLUMN declared_by TEXT;
