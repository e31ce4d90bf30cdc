-- Custom key stores (issue 13): one record per store, kept whole as JSON like the others.
-- Secrets in the document are sealed by the main token (never in clear).
CREATE TABLE p11kms_custom_key_stores (
  custom_key_store_id text   PRIMARY KEY,
  region              text   NOT NULL,
  account_id          text   NOT NULL,
  created_at          bigint NOT NULL,
  doc                 json   NOT NULL
);
CREATE INDEX p11kms_custom_key_stores_scope ON p11kms_custom_key_stores (region, account_id, created_at, custom_key_store_id);
