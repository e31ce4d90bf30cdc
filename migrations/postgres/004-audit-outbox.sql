-- The audit outbox (docs/audit.md, "Crash behaviour"): a change's audit record, committed in
-- the change's own transaction and removed once the record is in the trail. Entries a process
-- left behind (it died between commit and trail) are written to the trail by another.
CREATE TABLE p11kms_audit_outbox (
  id         text PRIMARY KEY,
  owner      text   NOT NULL,
  created_at bigint NOT NULL,
  doc        json   NOT NULL
);
