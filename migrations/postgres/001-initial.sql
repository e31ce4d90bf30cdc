-- p11kms metadata on PostgreSQL, version 1.
-- Records are kept whole as JSON documents (the same shape as the JSON store), with the
-- columns that identify, order and constrain them beside. `json` (not jsonb) keeps the
-- documents byte for byte, member order included.

-- One record per key and region (a multi-Region key has one per region, under one key id).
CREATE TABLE p11kms_keys (
  key_id     text   NOT NULL,
  region     text   NOT NULL,
  account_id text   NOT NULL,
  created_at bigint NOT NULL,
  doc        json   NOT NULL,
  PRIMARY KEY (key_id, region)
);
CREATE INDEX p11kms_keys_scope ON p11kms_keys (region, account_id, created_at, key_id);

-- An alias name is unique per account and region.
CREATE TABLE p11kms_aliases (
  region        text NOT NULL,
  account_id    text NOT NULL,
  alias_name    text NOT NULL,
  target_key_id text NOT NULL,
  doc           json NOT NULL,
  PRIMARY KEY (region, account_id, alias_name)
);
CREATE INDEX p11kms_aliases_target ON p11kms_aliases (target_key_id);

-- Grant Name idempotency: one grant per key record for one Name with the same parameters
-- (name_fingerprint hashes the Name and every parameter; NULL for grants without a Name).
CREATE TABLE p11kms_grants (
  grant_id         text PRIMARY KEY,
  key_id           text   NOT NULL,
  region           text   NOT NULL,
  created_at       bigint NOT NULL,
  name_fingerprint text,
  doc              json   NOT NULL
);
CREATE INDEX p11kms_grants_key ON p11kms_grants (key_id, region, created_at, grant_id);
CREATE UNIQUE INDEX p11kms_grants_name ON p11kms_grants (key_id, region, name_fingerprint) WHERE name_fingerprint IS NOT NULL;
